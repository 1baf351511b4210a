// Bounded memory at a relay (docs/PROTOCOL.md §5.5), in-process over memory channels with
// a fake clock: cells queued behind a stalled EXTEND end THAT circuit at the per-circuit
// cap, never the channel it shares with honest circuits; the memory budget ends the
// circuits holding the oldest queued cells; a channel whose cells wait beyond the bound
// stops being read (its sender sees the backpressure) and is read again below half; a
// next hop that stops reading caps each circuit's send queue, and one that reads nothing
// for the stall timeout loses its channel. The same flood against a real relay process,
// with its RSS measured, is flood.test.ts.
import t from 'tap'
import { ChannelCommand } from '../../../src/onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { HopError, encodeExtend } from '../../../src/onion/cells/relay-msg.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { settle, until } from '../../helpers/fake-clock.js'
import { RawCircuit } from './raw-circuit.js'
import { holdable, inProcessNet, rawChannel } from './harness.js'

const TURNS = 200_000

const extendTo = (d: Descriptor): Buffer =>
  encodeExtend({ fingerprint: Buffer.from(d.fingerprint, 'hex'), host: d.host, port: d.port, create: clientStart({ identityKey: Buffer.from(d.identityKey, 'base64') }).create })

/** sends n distinct cells (DROP for hop `target`) on the circuit */
function cellsOn (c: RawCircuit, target: number, n: number): void {
  for (let i = 0; i < n; i++) c.send(target, RelayCommand.DROP, Buffer.alloc(0))
}

/** the same, in batches the client's own channel lets out before the next (its send queues never hold a circuit's 2 MiB) */
async function pushCells (c: RawCircuit, target: number, n: number): Promise<void> {
  for (let sent = 0; sent < n; sent += 100) {
    cellsOn(c, target, Math.min(100, n - sent))
    await until(() => c.ch.pendingBytes === 0, TURNS)
  }
}

const destroysOf = (c: RawCircuit): number[] => c.cells.filter((x) => x.circId === c.circId && x.cmd === ChannelCommand.DESTROY).map((x) => x.data[0])

t.test('cells behind a stalled EXTEND: the circuit ends at its cap, the shared channels go on', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'], { init: (i) => (i === 1 ? { circuitQueueCells: 200 } : {}) })
  const [r1, r2] = net.relays
  const hole = net.addStalled('127.0.0.60')
  net.publish([r1.d, r2.d, hole])
  // one client channel, and one r1 → r2 channel, for the honest circuit and the attack
  const channel = rawChannel(net, r1.d, '127.0.0.78')
  const honest = await RawCircuit.build(net, [r1.d, r2.d, net.final.d], { channel })
  const attack = await RawCircuit.build(net, [r1.d, r2.d], { channel })
  t.equal(r1.core.channelCount, 2, 'r1 has the client channel and one channel to r2')

  // r2 extends towards a hop whose channel never opens: the circuit's later cells wait at r2
  attack.send(2, RelayCommand.EXTEND, extendTo(hole))
  cellsOn(attack, 2, 1000)
  t.ok(await until(() => destroysOf(attack).length > 0, TURNS), 'the attacking circuit was ended')
  t.same(destroysOf(attack), [HopError.BUSY], 'by one DESTROY BUSY (r2 ended it, r1 passed it back)')
  t.equal(r2.core.counters.refusals.MM_ERR_CIRCUIT_QUEUE, 1, 'r2 counted MM_ERR_CIRCUIT_QUEUE once')
  await settle(200)
  t.equal(destroysOf(attack).length, 1, 'the ~800 cells still on their way were dropped unanswered')
  t.equal(r2.core.queuedBytes, 0, 'nothing waits at r2 any more')
  t.notOk(channel.ch.closed, 'the client channel it shared is open')
  t.equal(await honest.echo('same channels'), 'same channels', 'the honest circuit on the same client and relay channels works')

  // the EXTEND's channel never opened: at the extend timeout it is given up, quietly
  await net.clock.advance(10_000)
  t.equal(destroysOf(attack).length, 1)
  t.equal(await honest.echo('after the timeout'), 'after the timeout')
  t.equal(r1.core.counters.refusals.MM_ERR_CIRCUIT_QUEUE, undefined, 'r1 ended nothing: it forwarded as fast as it received')
})

t.test('the memory budget ends the circuits holding the oldest cells', async (t) => {
  // budget: 100 cells; each circuit may queue 1000 (the cap cannot act first)
  const net = inProcessNet(t, ['127.0.0.11'], { init: () => ({ maxQueuedBytes: 100 * CELL_SIZE, circuitQueueCells: 1000, createBurst: 1000 }) })
  const [r1] = net.relays
  const hole = net.addStalled('127.0.0.60')
  net.publish([r1.d, hole])
  const honest = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.70' })
  const channel = rawChannel(net, r1.d, '127.0.0.78')
  const [a, b, c] = [await RawCircuit.build(net, [r1.d], { channel }), await RawCircuit.build(net, [r1.d], { channel }), await RawCircuit.build(net, [r1.d], { channel })]
  for (const x of [a, b, c]) x.send(1, RelayCommand.EXTEND, extendTo(hole))
  await settle()
  // 40 cells each, in this order: 120 > 100 when c's 21st arrives
  for (const x of [a, b, c]) cellsOn(x, 1, 40)
  t.ok(await until(() => destroysOf(a).length > 0, TURNS), 'the oldest circuit was ended')
  await settle(200)
  t.same([destroysOf(a), destroysOf(b), destroysOf(c)], [[HopError.BUSY], [], []], 'only the one holding the oldest cells: 80 cells are under 90% of the budget')
  t.equal(r1.core.counters.refusals.MM_ERR_QUEUE_MEMORY, 1, 'counted as MM_ERR_QUEUE_MEMORY')
  t.equal(r1.core.queuedBytes, 80 * CELL_SIZE, 'b and c still wait behind their EXTENDs')
  t.ok(r1.core.queuedBytes <= 100 * CELL_SIZE, 'within the budget')
  t.equal(await honest.echo('served'), 'served', 'an honest circuit on the same relay works')
  await net.clock.advance(10_000)
  t.same([destroysOf(b), destroysOf(c)], [[HopError.UNREACHABLE], [HopError.UNREACHABLE]], 'at the extend timeout b and c fail (ERROR, then DESTROY UNREACHABLE)')
  t.equal(r1.core.queuedBytes, 0)
})

t.test('backpressure: a channel whose cells wait beyond the bound is not read until they drain', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11'], { init: () => ({ channelPauseBytes: 50 * CELL_SIZE, circuitQueueCells: 1000 }) })
  const [r1] = net.relays
  const hole = net.addStalled('127.0.0.60')
  net.publish([r1.d, hole])
  const honest = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.70' })
  const attack = await RawCircuit.build(net, [r1.d], { from: '127.0.0.78' })
  attack.send(1, RelayCommand.EXTEND, extendTo(hole))
  await settle()
  cellsOn(attack, 1, 80)
  await settle(300)
  t.equal(r1.core.queuedBytes, 51 * CELL_SIZE, 'the relay stopped reading just past 50 waiting cells')
  t.equal(attack.ch.queued, 29, 'the other 29 wait at the sender, as TCP would hold them')
  t.equal(await honest.echo('other channel'), 'other channel', 'other channels are read as usual')
  await net.clock.advance(10_000)
  t.ok(await until(() => attack.ch.queued === 0, TURNS), 'once the circuit ended (extend timeout) and its cells went, the channel is read again')
  t.same(destroysOf(attack), [HopError.UNREACHABLE])
  t.equal(r1.core.queuedBytes, 0)
})

t.test('a next hop that stops reading: per-circuit send queues, then the stall timeout', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'], { init: () => ({ circuitQueueCells: 5000 }) })
  const [r1, r2] = net.relays
  const r2reads = holdable()
  net.listeners.get(`${r2.d.host}:443`)!.transport = r2reads.transport
  const channel = rawChannel(net, r1.d, '127.0.0.78')
  const honest = await RawCircuit.build(net, [r1.d, r2.d, net.final.d], { channel })
  const attack = await RawCircuit.build(net, [r1.d, r2.d, net.final.d], { channel })

  await t.test('one circuit\'s backlog ends that circuit, not the channel', async (t) => {
    r2reads.hold()
    await pushCells(attack, 3, 1500)
    t.ok(await until(() => destroysOf(attack).length > 0, TURNS), 'the flooding circuit was ended')
    t.same(destroysOf(attack), [HopError.BUSY])
    t.equal(r1.core.counters.refusals.MM_ERR_CIRCUIT_QUEUE, 1, 'r1: its send queue towards r2 passed 2 MiB (MM_ERR_CIRCUIT_QUEUE)')
    t.equal(r1.core.channelCount, 2, 'the r1 → r2 channel is still open')
    t.ok(r1.core.queuedBytes < 2 * 1024 * 1024, 'its queued cells were dropped')
    r2reads.release()
    t.equal(await honest.echo('still here'), 'still here', 'the honest circuit on the same channels works')
  })

  await t.test('a next hop that reads nothing for the stall timeout loses its channel', async (t) => {
    r2reads.hold()
    cellsOn(honest, 3, 300) // 128 fill the transport, the rest wait at r1
    await settle(300)
    t.ok(r1.core.queuedBytes > 0, 'cells wait at r1 for r2')
    await net.clock.advance(15_000)
    t.equal(r1.core.counters.refusals.MM_ERR_PEER_STALLED, 1, 'r1 closed the channel as stalled (MM_ERR_PEER_STALLED)')
    t.ok(await until(() => destroysOf(honest).length > 0, TURNS))
    t.same(destroysOf(honest), [HopError.UNREACHABLE], 'its circuits end as after any channel loss')
    t.equal(r1.core.queuedBytes, 0)
    r2reads.release()
    const again = await RawCircuit.build(net, [r1.d, r2.d, net.final.d], { from: '127.0.0.79' })
    t.equal(await again.echo('new channel'), 'new channel', 'a new circuit opens a new channel to r2 and works')
  })
})
