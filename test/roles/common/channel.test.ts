// connectChannel against a bare TLS WebSocket endpoint written here byte by byte, so
// the wire is what the test reads: the pinned certificate decides whether the link
// opens, frames are one 2048-byte binary message each, the connecting side's masking
// key is all zeros (docs/PROTOCOL.md §2.1), and cells from the peer arrive decoded.

import t from 'tap'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { Duplex } from 'node:stream'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectChannel } from '../../../src/roles/common/channel.js'
import { loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { LinkCommand, encodeLinkCell, type LinkCell } from '../../../src/onion/cells/link-cell.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'

const dir = mkdtempSync(join(tmpdir(), 'mm-channel-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const id = loadOrCreateIdentity(dir, '127.0.0.1')

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

  const cells = [1, 2, 3].map((n) => encodeLinkCell(n, LinkCommand.RELAY, Buffer.alloc(100, n)))
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
  const got = new Promise<LinkCell>((resolve) => ch.once('cell', resolve))
  const back = encodeLinkCell(7, LinkCommand.CREATED, Buffer.alloc(10, 9))
  sock.write(Buffer.concat([Buffer.from([0x82, 126, CELL_SIZE >> 8, CELL_SIZE & 0xff]), back]))
  const cell = await got
  t.equal(cell.circId, 7)
  t.equal(cell.cmd, LinkCommand.CREATED)

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
