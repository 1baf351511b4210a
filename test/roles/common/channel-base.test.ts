// ChannelBase (docs/PROTOCOL.md §2, §2.3) over the in-memory pair: the frame checks and
// the AUTH rules every Channel shares, whatever its transport (the WebSocket one is
// tested on real TLS in channel.test.ts), and the memory pair's own promises: cells
// arrive in order, a close reaches the other end with its code and reason, and the
// transport hook can hold, reorder or drop frames.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { encodeAuth } from '../../../src/onion/handshake/channel-auth.js'
import { CLOSE, MAX_QUEUED_BYTES, type ChannelAuthVerifier } from '../../../src/roles/common/channel.js'
import { loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { memoryChannelPair, type MemoryChannel, type MemoryFrame } from '../../helpers/memory-channel.js'

const dir = mkdtempSync(join(tmpdir(), 'mm-channel-base-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const hop = loadOrCreateIdentity(join(dir, 'hop'), '127.0.0.1')
const relay = loadOrCreateIdentity(join(dir, 'relay'), '127.0.0.1')
const signer = { identityPrivate: relay.privateDer, fingerprint: relay.fingerprint, responderFingerprint: hop.fingerprint }
const verifier: ChannelAuthVerifier = { fingerprint: hop.fingerprint, identityKey: (fp) => (fp === relay.fingerprintHex ? relay.publicDer : undefined) }

const tick = () => new Promise((resolve) => setImmediate(resolve))
const closeOf = (ch: MemoryChannel): Promise<[number, string]> => new Promise((resolve) => ch.once('close', (code, reason) => resolve([code, reason])))
const record = (ch: MemoryChannel): { cell: ChannelCell, peer?: string }[] => {
  const cells: { cell: ChannelCell, peer?: string }[] = []
  ch.on('cell', (cell) => cells.push({ cell, peer: ch.authenticatedPeer }))
  return cells
}

t.test('cells in order both ways; counters; a close reaches the other end', async (t) => {
  const { a, b } = memoryChannelPair({ aAddress: '10.0.0.1:5', bAddress: '10.0.0.2:443' })
  t.same([a.initiator, b.initiator, a.remote, b.remote], [true, false, '10.0.0.2:443', '10.0.0.1:5'])
  t.ok(a.keyingMaterial().equals(b.keyingMaterial()), 'one exporter value for both ends')
  t.equal(a.keyingMaterial().length, 32)
  t.notOk(memoryChannelPair().a.keyingMaterial().equals(a.keyingMaterial()), 'another pair, another value')
  const atB = record(b)
  const atA = record(a)
  for (const id of [1, 2, 3]) a.send(encodeChannelCell(id, ChannelCommand.RELAY, Buffer.alloc(10, id)))
  b.send(encodeChannelCell(9, ChannelCommand.CREATED, Buffer.alloc(64)))
  await tick()
  t.same(atB.map((c) => c.cell.circId), [1, 2, 3], 'in order')
  t.same(atA.map((c) => [c.cell.circId, c.cell.cmd]), [[9, ChannelCommand.CREATED]])
  t.same([a.cellsOut, b.cellsIn, b.cellsOut, a.cellsIn], [3, 3, 1, 1])
  t.throws(() => a.send(Buffer.alloc(CELL_SIZE - 1)), { code: 'MM_ERR_LENGTH' }, 'only whole cells are sent')
  const closed = closeOf(b)
  a.close(CLOSE.NORMAL, 'bye')
  t.ok(a.closed, 'closed at once on this side')
  t.same(await closed, [1000, 'bye'], 'the other end hears the code and the reason')
  a.send(encodeChannelCell(1, ChannelCommand.RELAY, Buffer.alloc(1)))
  t.equal(a.cellsOut, 3, 'a closed channel sends nothing')
  t.equal(MAX_QUEUED_BYTES, 4 * 1024 * 1024)
})

t.test('every frame is checked before it is a cell', async (t) => {
  for (const [name, data, isBinary, reason] of [
    ['a text frame', Buffer.alloc(CELL_SIZE), false, 'text frame on a cell channel'],
    ['a short frame', Buffer.alloc(100), true, 'frame of 100 bytes; cells are 2048'],
    ['circuit id 0', Buffer.alloc(CELL_SIZE), true, 'MM_ERR_CIRC_ID'],
  ] as const) {
    const { a, b } = memoryChannelPair()
    const cells = record(b)
    const closed = closeOf(a)
    a.sendFrame(data, isBinary)
    t.same(await closed, [1008, reason], `${name}: the receiving side closes with its reason`)
    t.same([cells.length, b.closed], [0, true])
  }
})

t.test('AUTH: checked before the next cell, first and once, only towards the responder', async (t) => {
  // a relay's channel: AUTH first, then (same turn) a CREATE judged as the relay's
  let p = memoryChannelPair({ signer, auth: verifier })
  const auth: unknown[] = []
  p.b.on('auth', (r) => auth.push(r))
  let cells = record(p.b)
  p.a.send(encodeChannelCell(7, ChannelCommand.CREATE, Buffer.alloc(10)))
  await tick()
  t.same(auth, [{ peer: relay.fingerprintHex }])
  t.same(cells.map((c) => [c.cell.cmd, c.peer]), [[ChannelCommand.CREATE, relay.fingerprintHex]], 'AUTH is not passed on; the cell after it sees the proven peer')
  t.equal(p.b.cellsIn, 2)
  let closed = closeOf(p.a)
  p.a.send(encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ ...signer, exporter: p.a.keyingMaterial() })))
  t.same((await closed)[1].split(':')[0], 'MM_ERR_AUTH_ORDER', 'a second AUTH closes the channel')

  // AUTH after another cell
  p = memoryChannelPair({ auth: verifier })
  cells = record(p.b)
  closed = closeOf(p.a)
  p.a.send(encodeChannelCell(7, ChannelCommand.CREATE, Buffer.alloc(10)))
  p.a.sendAuth(signer)
  t.same((await closed)[1].split(':')[0], 'MM_ERR_AUTH_ORDER', 'AUTH after a CREATE')
  t.equal(cells[0]?.peer, undefined, 'that CREATE was a client\'s')

  // AUTH bound to another channel's exporter
  const other = memoryChannelPair()
  p = memoryChannelPair({ auth: verifier })
  closed = closeOf(p.a)
  p.a.send(encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ ...signer, exporter: other.a.keyingMaterial() })))
  t.same(await closed, [1008, 'AUTH refused: MM_ERR_AUTH_SIGNATURE'])
  t.equal(p.b.authenticatedPeer, undefined)

  // towards the initiator, and at a hop that takes none
  p = memoryChannelPair({ auth: verifier })
  closed = closeOf(p.b)
  p.b.sendAuth({ ...signer, responderFingerprint: relay.fingerprint })
  t.match((await closed)[1], /^MM_ERR_CHANNEL_CMD: AUTH is not valid towards the initiator/)
  p = memoryChannelPair({ signer })
  t.match((await closeOf(p.a))[1], /^MM_ERR_CHANNEL_CMD: this hop takes no AUTH/)
})

t.test('the transport hook can hold and reorder frames (a hostile network)', async (t) => {
  const held: { f: MemoryFrame, deliver: () => void }[] = []
  const { a, b } = memoryChannelPair({ transport: (f, deliver) => { held.push({ f, deliver }) } })
  const cells = record(b)
  for (const id of [1, 2, 3]) a.send(encodeChannelCell(id, ChannelCommand.RELAY, Buffer.alloc(1)))
  await tick()
  t.same([cells.length, a.queued], [0, 3], 'nothing arrives until the transport says so')
  for (const i of [2, 0]) held[i].deliver()
  t.same(cells.map((c) => c.cell.circId), [3, 1], 'delivered in the order the transport chose; 2 was dropped')
})
