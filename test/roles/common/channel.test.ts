// connectChannel against a bare TLS WebSocket endpoint written here byte by byte, so
// the wire is what the test reads: the pinned certificate decides whether the channel
// opens, frames are one 2048-byte binary message each, the connecting side's masking
// key is all zeros (docs/PROTOCOL.md §2.1), and cells from the peer arrive decoded.
// AUTH (§2.3): a relay's channel sends it as its first frame, bound to the TLS exporter
// the other end computes too; an accepting channel checks it before the next cell and
// refuses it in the wrong direction, out of order, twice, or at a hop that takes none.

import t from 'tap'
import type * as Tap from 'tap'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { Duplex } from 'node:stream'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { WebSocketServer } from 'ws'
import { acceptChannel, connectChannel, type Channel, type ChannelAuthVerifier } from '../../../src/roles/common/channel.js'
import { loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { AUTH_EXPORTER_LABEL, encodeAuth, verifyAuth } from '../../../src/onion/handshake/channel-auth.js'

const dir = mkdtempSync(join(tmpdir(), 'mm-channel-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const id = loadOrCreateIdentity(dir, '127.0.0.1')
/** a relay that opens channels to `id` */
const relay = loadOrCreateIdentity(join(dir, 'relay'), '127.0.0.1')
const relayAuth = { identityPrivate: relay.privateDer, fingerprint: relay.fingerprint, responderFingerprint: id.fingerprint }

/** an HTTPS server that accepts one WebSocket upgrade and hands over the raw TLS socket */
async function bareEndpoint (): Promise<{ server: Server, port: number, socket: Promise<Duplex> }> {
  const server = createServer({ key: id.tlsKeyPem, cert: id.tlsCertPem })
  const socket = new Promise<Duplex>((resolve) => {
    server.on('upgrade', (req, sock: Duplex) => {
      const accept = createHash('sha1').update(String(req.headers['sec-websocket-key']) + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      resolve(sock)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port, socket }
}

function readBytes (sock: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (got.length >= n) { sock.off('data', onData); resolve(got) }
    }
    sock.on('data', onData)
  })
}

t.test('a channel to the pinned certificate: zero-mask frames out, cells in', async (t) => {
  const ep = await bareEndpoint()
  t.teardown(() => { ep.server.closeAllConnections(); ep.server.close() })
  const ch = await connectChannel({ host: '127.0.0.1', port: ep.port, tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint })
  t.teardown(() => ch.close())
  const sock = await ep.socket

  const cells = [1, 2, 3].map((n) => encodeChannelCell(n, ChannelCommand.RELAY, Buffer.alloc(100, n)))
  const copies = cells.map((c) => Buffer.from(c))
  const wire = readBytes(sock, 3 * (8 + CELL_SIZE))
  for (const c of cells) ch.send(c)
  const bytes = await wire
  for (let i = 0; i < 3; i++) {
    const f = bytes.subarray(i * (8 + CELL_SIZE))
    t.equal(f[0], 0x82, `frame ${i}: FIN + binary`)
    t.equal(f[1], 0x80 | 126, `frame ${i}: masked, 16-bit length`)
    t.equal(f.readUInt16BE(2), CELL_SIZE, `frame ${i}: one 2048-byte cell`)
    t.same([...f.subarray(4, 8)], [0, 0, 0, 0], `frame ${i}: the masking key is all zeros`)
    t.ok(f.subarray(8, 8 + CELL_SIZE).equals(copies[i]), `frame ${i}: the cell bytes travel as they are`)
  }
  t.ok(cells.every((c, i) => c.equals(copies[i])), 'the caller\'s buffers are not modified')

  // a server frame (unmasked) carrying one cell arrives as a decoded cell
  const got = new Promise<ChannelCell>((resolve) => ch.once('cell', resolve))
  const back = encodeChannelCell(7, ChannelCommand.CREATED, Buffer.alloc(10, 9))
  sock.write(Buffer.concat([Buffer.from([0x82, 126, CELL_SIZE >> 8, CELL_SIZE & 0xff]), back]))
  const cell = await got
  t.equal(cell.circId, 7)
  t.equal(cell.cmd, ChannelCommand.CREATED)

  // a frame of the wrong size closes the channel with 1008
  const closed = new Promise<number>((resolve) => ch.once('close', (code) => resolve(code)))
  sock.write(Buffer.from([0x82, 3, 1, 2, 3]))
  t.equal(await closed, 1008, 'a 3-byte frame closes the channel (policy)')
})

t.test('a certificate other than the pinned one is refused', async (t) => {
  const ep = await bareEndpoint()
  t.teardown(() => { ep.server.closeAllConnections(); ep.server.close() })
  await t.rejects(connectChannel({ host: '127.0.0.1', port: ep.port, tlsCert: id.tlsCertPem, tlsFingerprint: '00'.repeat(32) }), { code: 'MM_ERR_UNREACHABLE' })
})

t.test('with a relay identity, AUTH is the first frame, bound to the exporter the peer computes', async (t) => {
  const ep = await bareEndpoint()
  t.teardown(() => { ep.server.closeAllConnections(); ep.server.close() })
  const sock = ep.socket.then((s) => { const wire = readBytes(s, 8 + CELL_SIZE); return { s, wire } })
  const ch = await connectChannel({ host: '127.0.0.1', port: ep.port, tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint, auth: relayAuth })
  t.teardown(() => ch.close())
  const { s, wire } = await sock
  const frame = await wire
  t.equal(frame.readUInt16BE(2), CELL_SIZE, 'one whole cell')
  const cell = decodeChannelCell(frame.subarray(8, 8 + CELL_SIZE))
  t.equal(cell.cmd, ChannelCommand.AUTH, 'the first cell is AUTH')
  // the listening side's own exporter for this TLS connection (node's TLS socket, not the channel code)
  const exporter = (s as TLSSocket).exportKeyingMaterial(32, AUTH_EXPORTER_LABEL, Buffer.alloc(0))
  t.ok(exporter.equals(ch.keyingMaterial()), 'both ends derive the same exporter value')
  const lookup = (fp: string) => fp === relay.fingerprintHex ? relay.publicDer : undefined
  t.equal(verifyAuth({ data: cell.data, responderFingerprint: id.fingerprint, exporter, identityKey: lookup }), relay.fingerprintHex, 'it proves the relay\'s identity')
  t.equal(
    (() => { try { verifyAuth({ data: cell.data, responderFingerprint: relay.fingerprint, exporter, identityKey: lookup }); return 'ok' } catch (e) { return (e as { code: string }).code } })(),
    'MM_ERR_AUTH_SIGNATURE', 'and only to the hop it was sent to')

  // AUTH from the accepting side (towards the initiator) closes the channel
  const closed = new Promise<[number, string]>((resolve) => ch.once('close', (code, reason) => resolve([code, reason])))
  s.write(Buffer.concat([Buffer.from([0x82, 126, CELL_SIZE >> 8, CELL_SIZE & 0xff]), encodeChannelCell(1, ChannelCommand.AUTH, cell.data)]))
  const [code, reason] = await closed
  t.equal(code, 1008)
  t.match(reason, /^MM_ERR_CHANNEL_CMD/, 'AUTH is not valid towards the initiator')
})

t.test('without one (a client), no AUTH is sent', async (t) => {
  const ep = await bareEndpoint()
  t.teardown(() => { ep.server.closeAllConnections(); ep.server.close() })
  const ch = await connectChannel({ host: '127.0.0.1', port: ep.port, tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint })
  t.teardown(() => ch.close())
  const wire = readBytes(await ep.socket, 8 + CELL_SIZE)
  ch.send(encodeChannelCell(9, ChannelCommand.CREATE, Buffer.alloc(10)))
  t.equal(decodeChannelCell((await wire).subarray(8, 8 + CELL_SIZE)).cmd, ChannelCommand.CREATE, 'the first cell is the client\'s own')
})

/** an HTTPS server whose upgrades become accepted channels (as a relay's /channel route) */
async function acceptingEndpoint (t: Tap.Test, auth?: ChannelAuthVerifier): Promise<{ port: number, next: () => Promise<{ ch: Channel, cells: { cell: ChannelCell, peer?: string }[], closed: Promise<[number, string]> }> }> {
  const server = createServer({ key: id.tlsKeyPem, cert: id.tlsCertPem })
  const wss = new WebSocketServer({ noServer: true, maxPayload: CELL_SIZE })
  const waiting: ((x: Channel) => void)[] = []
  server.on('upgrade', (req, sock, head) => wss.handleUpgrade(req, sock, head, (ws) => {
    const ch = acceptChannel(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`, { auth })
    waiting.shift()?.(ch)
  }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { wss.close(); server.closeAllConnections(); server.close() })
  return {
    port: (server.address() as { port: number }).port,
    // the next channel accepted; its cells record who the peer was proven to be when each arrived
    next: () => new Promise((resolve) => waiting.push((ch) => {
      const cells: { cell: ChannelCell, peer?: string }[] = []
      ch.on('cell', (cell) => cells.push({ cell, peer: ch.authenticatedPeer }))
      const closed = new Promise<[number, string]>((resolve) => ch.once('close', (code, reason) => resolve([code, reason])))
      resolve({ ch, cells, closed })
    })),
  }
}

t.test('an accepting channel checks AUTH before the next cell, and only as the first cell, once', async (t) => {
  const verifier: ChannelAuthVerifier = { fingerprint: id.fingerprint, identityKey: (fp) => fp === relay.fingerprintHex ? relay.publicDer : undefined }
  const ep = await acceptingEndpoint(t, verifier)
  const connect = (auth?: typeof relayAuth) => connectChannel({ host: '127.0.0.1', port: ep.port, tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint, auth })

  // AUTH then, in the same tick, a CREATE: the CREATE is already judged as the relay's
  let accepted = ep.next()
  const a = await connect(relayAuth)
  t.teardown(() => a.close())
  a.send(encodeChannelCell(7, ChannelCommand.CREATE, Buffer.alloc(10)))
  let s = await accepted
  const first = await new Promise<{ cell: ChannelCell, peer?: string }>((resolve) => { const poll = () => s.cells[0] ? resolve(s.cells[0]) : setTimeout(poll, 5); poll() })
  t.equal(first.cell.cmd, ChannelCommand.CREATE, 'AUTH itself is not passed on as a cell')
  t.equal(first.peer, relay.fingerprintHex, 'the cell right after AUTH sees the proven peer')
  t.equal(s.ch.cellsIn, 2)

  // a second AUTH (a replay on the same connection) closes the channel
  a.send(encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ ...relayAuth, exporter: a.keyingMaterial() })))
  let [code, reason] = await s.closed
  t.same([code, reason.split(':')[0]], [1008, 'MM_ERR_AUTH_ORDER'], 'a second AUTH')

  // AUTH after another cell
  accepted = ep.next()
  const b = await connect()
  t.teardown(() => b.close())
  s = await accepted
  const bExporter = b.keyingMaterial()
  b.send(encodeChannelCell(7, ChannelCommand.CREATE, Buffer.alloc(10)))
  b.send(encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ ...relayAuth, exporter: bExporter })))
  ;[code, reason] = await s.closed
  t.same([code, reason.split(':')[0]], [1008, 'MM_ERR_AUTH_ORDER'], 'AUTH after a CREATE')
  t.equal(s.cells[0]?.peer, undefined, 'that CREATE was a client\'s')

  // AUTH made for another connection: the exporter differs
  accepted = ep.next()
  const c = await connect()
  t.teardown(() => c.close())
  s = await accepted
  t.notOk(c.keyingMaterial().equals(bExporter), 'two connections, two exporter values')
  c.send(encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ ...relayAuth, exporter: bExporter })))
  ;[code, reason] = await s.closed
  t.same([code, reason], [1008, 'AUTH refused: MM_ERR_AUTH_SIGNATURE'], 'an AUTH bound to another connection')
  t.equal(s.ch.authenticatedPeer, undefined)
})

t.test('a hop that takes no AUTH (the final hop) closes a channel that sends one', async (t) => {
  const ep = await acceptingEndpoint(t)
  const accepted = ep.next()
  const ch = await connectChannel({ host: '127.0.0.1', port: ep.port, tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint, auth: relayAuth })
  t.teardown(() => ch.close())
  const [code, reason] = await (await accepted).closed
  t.same([code, reason.split(':')[0]], [1008, 'MM_ERR_CHANNEL_CMD'])
})
