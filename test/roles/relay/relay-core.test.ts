// RelayCore in-process over memory channels with the fake clock: a request through
// three relays and back (multi-cell, concurrent), what each relay sees (P2: only its two
// neighbours; P3: every cell on every channel is one size; P1: the final hop sees only
// the exit relay), DESTROY in both directions, a circuit following its previous hop onto
// a new channel within the reattach grace and torn down after it, a NAT neighbour's
// CREATE on a circuit id in use (IN_USE), a full circuit table evicting the oldest, and
// the sweep of routing entries whose records left the store.
import t from 'tap'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { ChannelCommand, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import type { MemoryFrame } from '../../helpers/memory-channel.js'
import { settle, until } from '../../helpers/fake-clock.js'
import { RawCircuit, createCell } from './raw-circuit.js'
import { inProcessNet, rawChannel } from './harness.js'

t.test('a request through three relays and back', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const sizes = new Set<number>()
  const frames: MemoryFrame[] = []
  const transport = (f: MemoryFrame, deliver: () => void) => { frames.push(f); if (f.kind === 'frame') sizes.add(f.data.length); setImmediate(deliver) }
  // every channel of this test carries its frames through `transport`
  const open = net.open.bind(net)
  net.open = (target, o = {}) => open(target, { ...o, transport })

  const circuit = await RawCircuit.build(net, [...net.relays.map((r) => r.d), net.final.d])
  t.equal(circuit.onion.length, 4, 'four hops: three relays and the final hop')
  const small = await circuit.request({ method: 'POST', path: '/echo', headers: {}, body: Buffer.from('hello onion') })
  t.same([small.status, small.body.toString(), small.headers['x-path']], [200, 'hello onion', '/echo'])

  const big = Buffer.alloc(20_000, 7)
  const replies = []
  for (const i of [1, 2, 3, 4, 5]) replies.push(await circuit.request({ method: 'POST', path: `/p${i}`, headers: {}, body: i === 3 ? big : Buffer.from(`m${i}`) }))
  t.same(replies.map((r) => r.headers['x-path']), ['/p1', '/p2', '/p3', '/p4', '/p5'], 'each request gets its own response')
  t.ok(replies[2].body.equals(big), 'a 20 kB body crosses as many cells and comes back whole')

  // P2 from the relays' traces: the addresses each one ever saw
  const seen = net.relays.map((r) => new Set(r.traces.flatMap((e) => [e.from, e.to]).filter((a) => a !== '-').map((a) => a.replace(/:\d+$/, ''))))

  t.same([...seen[0]].sort(), ['127.0.0.12', '127.0.0.77'], 'entry relay sees the client and the middle relay only')
  t.same([...seen[1]].sort(), ['127.0.0.11', '127.0.0.13'], 'middle relay sees only its two neighbours')
  t.same([...seen[2]].sort(), ['127.0.0.12', '127.0.0.20'], 'exit relay sees the middle relay and the server only')
  t.ok(net.final.peers.length > 0 && net.final.peers.every((p) => p.startsWith('127.0.0.13:')), 'the final hop saw only the exit relay')
  t.same([...sizes], [CELL_SIZE], 'every frame on every channel is one cell of the same size')

  // DESTROY from the client: every hop forgets the circuit, each next hop hears reason 0
  const destroys = () => frames.filter((f) => f.kind === 'frame' && f.data[4] === ChannelCommand.DESTROY).map((f) => (f as { data: Buffer }).data[5])
  circuit.ch.send(encodeChannelCell(circuit.circId, ChannelCommand.DESTROY, Buffer.from([0])))
  t.ok(await until(() => net.final.endpoint.circuits() === 0), 'the final hop wiped its circuit')
  t.same(await Promise.all(net.relays.map((r) => r.sessions.size())), [0, 0, 0], 'no relay keeps a record or back pointer')
  t.same(destroys(), [0, 0, 0, 0], 'DESTROY(0) hop by hop to the final hop')
})

t.test('DESTROY travels back with its reason; a closed next channel is UNREACHABLE', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'])
  const [d1, d2] = net.relays.map((r) => r.d)
  const c = await RawCircuit.build(net, [d1, d2, net.final.d])
  t.equal(await c.echo('up'), 'up')
  // the exit relay's channel to the final hop closes under the circuit
  net.final.endpoint.closeAll()
  const cell = await c.nextCell()
  t.same([cell.cmd, cell.data[0]], [ChannelCommand.DESTROY, HopError.UNREACHABLE], 'the client hears DESTROY(UNREACHABLE)')
  await settle()
  t.same(await Promise.all(net.relays.map((r) => r.sessions.size())), [0, 0], 'both relays forgot the circuit')
  t.notOk(c.ch.closed, 'the client\'s channel stays open')
})

t.test('a circuit follows its previous hop onto a new channel within the grace, and ends after it', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11'])
  const [r1] = net.relays
  const c = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.77' })
  t.equal(await c.echo('one'), 'one')
  c.ch.close(1000, 'client moves')
  await net.clock.advance(2_999)
  t.equal(await r1.sessions.size(), 2, 'kept during the grace (hop record and back pointer)')
  // the same client (same address) on a new channel: the same circuit id and keys
  const again = rawChannel(net, r1.d, '127.0.0.77')
  c.moveTo(again)
  t.equal(await c.echo('two'), 'two', 'the circuit works on the new channel')
  await net.clock.advance(10_000)
  t.equal(await c.echo('three'), 'three', 'and is not torn down when the old channel\'s grace ends')

  again.ch.close(1000, 'gone')
  await net.clock.advance(3_000)
  t.equal(await r1.sessions.size(), 0, 'after the grace without a new channel the circuit is gone')
  t.equal(net.final.endpoint.circuits(), 0, 'and the final hop heard DESTROY')
})

t.test('a NAT neighbour\'s CREATE on a circuit id in use is refused, not merged', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11'])
  const [r1] = net.relays
  const owner = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.77', circId: 42 })
  const neighbour = rawChannel(net, r1.d, '127.0.0.77')
  neighbour.ch.send(createCell(r1.d, 42))
  t.ok(await until(() => neighbour.cells.length > 0))
  t.same([neighbour.cells[0].circId, neighbour.cells[0].cmd, neighbour.cells[0].data[0]], [42, ChannelCommand.DESTROY, HopError.IN_USE], 'DESTROY IN_USE')
  t.notOk(neighbour.ch.closed, 'the neighbour\'s channel stays open')
  t.equal(r1.core.counters.cellsRejected, 1, 'counted as rejected')
  t.equal(await owner.echo('mine'), 'mine', 'the owner\'s circuit is untouched')
  neighbour.ch.send(createCell(r1.d, 43))
  t.ok(await until(() => neighbour.cells.length > 1))
  t.equal(neighbour.cells[1].cmd, ChannelCommand.CREATED, 'another id is served')
})

t.test('a full circuit table refuses new circuits (BUSY) and evicts none', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11'], { maxCircuits: () => 100, init: () => ({ createRate: 100000, createBurst: 100000 }) })
  const [big] = net.relays
  const { ch, cells } = rawChannel(net, big.d, '127.0.0.80')
  for (let i = 1; i <= 200; i++) ch.send(createCell(big.d, i))
  t.ok(await until(() => cells.length >= 200), 'answers to 200 CREATEs')
  t.equal(cells.filter((c) => c.cmd === ChannelCommand.CREATED).length, 100, 'the first 100 handshakes were answered with CREATED')
  t.same(cells.filter((c) => c.cmd === ChannelCommand.DESTROY).map((c) => [c.data[0]]), Array.from({ length: 100 }, () => [HopError.BUSY]), 'the other 100 with DESTROY BUSY')
  t.equal(await big.sessions.size(), 100, 'the table is full, not over')
  t.same(cells.filter((c) => c.cmd === ChannelCommand.CREATED).map((c) => c.circId), Array.from({ length: 100 }, (_, i) => i + 1), 'the live circuits are the first 100: none was evicted')
  t.notOk(ch.closed, 'the flooding channel itself was not dropped')
  const before = cells.length
  ch.send(encodeChannelCell(1, ChannelCommand.DESTROY, Buffer.from([0])))
  await settle()
  ch.send(createCell(big.d, 1))
  t.ok(await until(() => cells.length > before || ch.closed))
  t.notOk(ch.closed, 'reusing the id of a destroyed circuit does not close the channel')
  t.equal(cells[before]?.cmd, ChannelCommand.CREATED, 'a circuit that left makes room for a new one')
  ch.send(encodeChannelCell(2, ChannelCommand.DESTROY, Buffer.from([0])))
  await settle()
  const c = await RawCircuit.build(net, [big.d, net.final.d], { from: '127.0.0.77' })
  t.equal(await c.echo('served'), 'served', 'a fresh circuit through the flooded relay works end to end')
})

t.test('the sweep drops routing entries whose records left the store', async (t) => {
  const net = inProcessNet(t, ['127.0.0.51'], { init: () => ({ sweepMs: 1000 }) })
  const [relay] = net.relays
  for (let i = 0; i < 20; i++) await RawCircuit.build(net, [relay.d, net.final.d], { from: '127.0.0.53' })
  t.equal(relay.core.tracked, 40, '20 inbound circuits and 20 outbound ids are routed locally')
  t.ok(relay.core.channelCount >= 2, 'the client channels and the channel to the final hop are open')
  await net.clock.advance(1000)
  t.equal(relay.core.tracked, 40, 'a sweep keeps entries whose records are in the store')
  // the records leave the store without a DESTROY (as when they expire or are evicted)
  const keys = relay.storeKeys()
  t.equal(keys.length, 40, 'a hop record and a back pointer per circuit')
  for (const k of keys) await relay.sessions.delete(k)
  t.equal(await relay.sessions.size(), 0, 'the store holds none of them')
  t.equal(relay.core.tracked, 40, 'until the next sweep the routing entries remain')
  await net.clock.advance(1000)
  t.equal(relay.core.tracked, 0, 'the sweep forgot their routing entries')
  t.ok(relay.core.channelCount >= 2, 'while the channels themselves stay open')
  await settle()
})
