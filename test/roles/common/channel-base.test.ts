// ChannelBase (docs/PROTOCOL.md §2, §2.3) over the in-memory pair: the frame checks and
// the AUTH rules every Channel shares, whatever its transport (the WebSocket one is
// tested on real TLS in channel.test.ts), and the memory pair's own promises: cells
// arrive in order, a close reaches the other end with its code and reason, and the
// transport hook can hold, reorder or drop frames. While the transport is full, cells wait
// in per-circuit send queues (PROTOCOL §5.5): round robin, one circuit over its cap is
// dropped alone, the channel closes only past the channel-wide bound; pausing holds frames.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { encodeAuth } from '../../../src/onion/handshake/channel-auth.js'
import { CLOSE, MAX_QUEUED_BYTES, type ChannelAuthVerifier } from '../../../src/roles/common/channel.js'
import { MAX_CIRCUIT_QUEUED_BYTES, SEND_HIGH_WATER } from '../../../src/roles/common/channel-types.js'
import { until } from '../../helpers/fake-clock.js'
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
  t.same([MAX_QUEUED_BYTES, MAX_CIRCUIT_QUEUED_BYTES, SEND_HIGH_WATER], [32 * 1024 * 1024, 2 * 1024 * 1024, 256 * 1024])
})

t.test('a full transport: per-circuit send queues, round robin, a cap per circuit (PROTOCOL §5.5)', async (t) => {
  const held: (() => void)[] = []
  let holding = true
  const { a, b } = memoryChannelPair({ transport: (f, deliver) => { if (holding && f.kind === 'frame') held.push(deliver); else setImmediate(deliver) } })
  const got = record(b)
  const overflows: number[] = []
  a.on('overflow', (id) => overflows.push(id))
  let accounted = 0
  a.account = { add: (d) => { accounted += d } }
  const fill = SEND_HIGH_WATER / CELL_SIZE
  const cell = (id: number, n: number): Buffer => encodeChannelCell(id, ChannelCommand.RELAY, Buffer.from([n]))
  for (let i = 0; i < fill; i++) a.send(cell(9, i))
  t.same([a.pendingBytes, a.cellsWritten], [0, fill], `${fill} cells fill the transport`)
  for (let i = 0; i < 3; i++) { a.send(cell(1, i)); a.send(cell(2, i)) }
  a.send(cell(1, 3))
  t.equal(a.pendingBytes, 7 * CELL_SIZE, 'the next ones wait in their circuits\' queues')
  t.equal(accounted, 7 * CELL_SIZE, 'and count into the account')
  t.same(a.queuedCircuits().map((q) => [q.circId, q.bytes]), [[1, 4 * CELL_SIZE], [2, 3 * CELL_SIZE]])

  // circuit 3 floods: past 2 MiB it alone is dropped; the others keep their cells
  for (let i = 0; i <= MAX_CIRCUIT_QUEUED_BYTES / CELL_SIZE; i++) a.send(cell(3, i % 256))
  t.same(overflows, [3], 'circuit 3 overflowed')
  t.equal(a.pendingBytes, 7 * CELL_SIZE, 'its cells were dropped, the others\' kept')
  t.equal(accounted, 7 * CELL_SIZE)
  t.notOk(a.closed, 'the channel stays open')

  // the peer reads again: waiting cells leave one circuit after another, each circuit in order
  holding = false
  for (const d of held.splice(0)) setImmediate(d)
  t.ok(await until(() => got.length === fill + 7), 'every kept cell arrived')
  t.same(got.slice(fill).map((c) => [c.cell.circId, c.cell.data[0]]), [[1, 0], [2, 0], [1, 1], [2, 1], [1, 2], [2, 2], [1, 3]], 'round robin between circuits, in order within each')
  t.same([a.pendingBytes, accounted], [0, 0])
})

t.test('a channel whose send queues pass 32 MiB closes (1013); pausing holds what arrives', async (t) => {
  const { a, b } = memoryChannelPair({ transport: (f, deliver) => { if (f.kind === 'close') setImmediate(deliver) } })
  const closed = closeOf(a)
  // many circuits, each under its own cap: only the channel-wide bound can act
  let n = 0
  for (let id = 1; !a.closed; id++) for (let i = 0; i < 500 && !a.closed; i++, n++) a.send(encodeChannelCell(id, ChannelCommand.RELAY, Buffer.alloc(1)))
  t.same(await closed, [CLOSE.OVERLOAD, 'MM_ERR_CHANNEL_QUEUE: send queue overflow'])
  t.equal(n, SEND_HIGH_WATER / CELL_SIZE + MAX_QUEUED_BYTES / CELL_SIZE + 1, 'it closed on the first cell over the bound')
  t.equal(a.pendingBytes, 0, 'a closed channel holds nothing')
  t.ok(b)

  const p = memoryChannelPair()
  const got = record(p.b)
  p.b.pauseReading()
  t.ok(p.b.readingPaused)
  for (let i = 1; i <= 5; i++) p.a.send(encodeChannelCell(i, ChannelCommand.RELAY, Buffer.alloc(1)))
  await tick()
  await tick()
  t.same([got.length, p.a.queued], [0, 5], 'a paused end reads nothing; its peer sees them still queued')
  p.b.resumeReading()
  t.same(got.map((c) => c.cell.circId), [1, 2, 3, 4, 5], 'resumed: they arrive, in order')
  t.equal(p.a.queued, 0)
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
