// Metered handshakes (docs/PROTOCOL.md §5.2, §5.5), in-process over memory channels with a
// fake clock (time moves only when a test advances it, so a bucket refills only then):
// the EXTEND loop (one EXTEND per circuit, a failed one ends it), a CREATE flood at a
// relay, on a relay-to-relay channel and at the final hop while an honest client keeps
// building circuits, and full circuit tables answering BUSY with live circuits intact.
//
// The slowdown an honest client sees under these floods: its builds queue behind at most
// the attacker's admitted handshakes (the burst: 90 at a relay, the final hop's 100 here,
// about 25 ms of RSA each way); every refused CREATE costs the hop a bucket lookup and a
// DESTROY, no RSA. The tests assert that every honest build succeeds, never how long it took.
import t from 'tap'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { HopError, encodeExtend } from '../../../src/onion/cells/relay-msg.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { FINAL_CREATE_BURST, FINAL_CREATE_RATE } from '../../../src/roles/common/final-hop-endpoint.js'
import { hopDescriptor } from '../../../src/roles/common/identity.js'
import { RELAY_DEFAULTS } from '../../../src/roles/relay/relay-context.js'
import type { MemoryChannel } from '../../helpers/memory-channel.js'
import { settle, until } from '../../helpers/fake-clock.js'
import { BuildError, RawCircuit, createCell } from './raw-circuit.js'
import { identityFor, inProcessNet, rawChannel, type InProcessNet } from './harness.js'

const TURNS = 200_000

/** sends CREATEs with ids first.. on `ch` and counts CREATED / DESTROY(BUSY) among their answers */
async function flood (ch: MemoryChannel, cells: ChannelCell[], d: Descriptor, n: number, first = 1): Promise<{ created: number, busy: number, answered: boolean }> {
  const before = cells.length
  for (let i = first; i < first + n; i++) ch.send(createCell(d, i))
  const answered = await until(() => cells.length >= before + n, TURNS)
  const answers = cells.slice(before)
  return {
    answered,
    created: answers.filter((c) => c.cmd === ChannelCommand.CREATED).length,
    busy: answers.filter((c) => c.cmd === ChannelCommand.DESTROY && c.data[0] === HopError.BUSY).length,
  }
}

/** n honest circuits built at once through `path` from `from`; how many then echo */
async function honestBuilds (net: InProcessNet, path: Descriptor[], n: number, from = '127.0.0.70'): Promise<number> {
  const ok = await Promise.all(Array.from({ length: n }, async (_, i) => {
    try {
      const c = await RawCircuit.build(net, path, { from })
      return (await c.echo(`honest ${i}`)) === `honest ${i}` ? 1 : 0
    } catch {
      return 0
    }
  }))
  return ok.reduce<number>((a, b) => a + b, 0)
}

const extendBody = (to: Descriptor, sealedFor: Descriptor): Buffer =>
  encodeExtend({ fingerprint: Buffer.from(to.fingerprint, 'hex'), host: to.host, port: to.port, create: clientStart({ identityKey: Buffer.from(sealedFor.identityKey, 'base64') }).create })

t.test('one EXTEND per circuit: the EXTEND loop buys one CREATE', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'])
  const [r1, r2] = net.relays
  let creates = 0
  net.listeners.get(`${r2.d.host}:443`)!.intercept = (f) => { if (f.data[4] === ChannelCommand.CREATE) creates++; return true }

  await t.test('500 EXTENDs at once on one circuit', async (t) => {
    const c = await RawCircuit.build(net, [r1.d], { from: '127.0.0.78' })
    // each EXTEND names a listed hop with a CREATE sealed to another key, which that hop refuses (HANDSHAKE)
    for (let i = 0; i < 500; i++) c.send(1, RelayCommand.EXTEND, extendBody(r2.d, r1.d))
    const u = await c.nextBackward()
    t.equal(u.cmd, RelayCommand.ERROR, 'the client hears why')
    const end = await c.nextCell()
    t.same([end.cmd, end.data[0]], [ChannelCommand.DESTROY, HopError.PROTOCOL], 'then the circuit ends: the second EXTEND on it fails it')
    await settle(200)
    t.equal(creates, 1, 'the next hop saw exactly one CREATE (500 before this fix)')
    t.equal(c.cells.filter((x) => x.circId === c.circId).length, 3, 'CREATED, one ERROR and one DESTROY: the other 498 EXTENDs were dropped unanswered')
    t.equal(r1.core.counters.refusals.MM_ERR_EXTEND_FAILED, 1, 'counted once as MM_ERR_EXTEND_FAILED')
    t.same(r1.storeKeys(), [], 'the circuit\'s records are gone from the store')
  })

  await t.test('EXTEND after a refused EXTEND', async (t) => {
    creates = 0
    const c = await RawCircuit.build(net, [r1.d], { from: '127.0.0.78' })
    c.send(1, RelayCommand.EXTEND, extendBody(r2.d, r1.d))
    const err = await c.nextBackward()
    t.equal(err.cmd, RelayCommand.ERROR)
    const end = await c.nextCell()
    t.same([end.cmd, end.data[0]], [ChannelCommand.DESTROY, HopError.HANDSHAKE], 'the refused EXTEND ended the circuit (DESTROY with the next hop\'s reason)')
    c.send(1, RelayCommand.EXTEND, extendBody(r2.d, r2.d))
    await settle(200)
    t.equal(creates, 1, 'the second EXTEND made no CREATE')
    t.equal(c.cells.filter((x) => x.circId === c.circId).length, 3, 'and got no answer')
  })

  await t.test('honest circuits through the same relays still build', async (t) => {
    t.equal(await honestBuilds(net, [r1.d, r2.d, net.final.d], 10), 10)
  })
})

t.test('a CREATE flood at a relay while an honest client builds circuits', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'])
  const [r1, r2] = net.relays
  const { ch, cells } = rawChannel(net, r1.d, '127.0.0.66')
  const [attack, honest] = await Promise.all([flood(ch, cells, r1.d, 2000), honestBuilds(net, [r1.d, r2.d, net.final.d], 20)])
  t.ok(attack.answered, 'every CREATE of the flood was answered')
  t.same([attack.created, attack.busy], [90, 1910], 'the flooding address got its burst (90), the rest DESTROY BUSY before any RSA work')
  t.equal(r1.core.counters.refusals.MM_ERR_CREATE_RATE, 1910, 'counted as MM_ERR_CREATE_RATE')
  t.equal(honest, 20, 'every honest build during the flood succeeded and echoed')
  t.notOk(ch.closed, 'the flooding channel is refused per CREATE, not closed')

  // the bucket refills at --create-rate (3/s): 10 s later, 30 more
  await net.clock.advance(10_000)
  const later = await flood(ch, cells, r1.d, 100, 5000)
  t.same([later.created, later.busy], [30, 70], 'after 10 s: 30 more handshakes, the rest refused')
})

t.test('a CREATE flood from 10 addresses at once: the budgets alone keep honest builds working', async (t) => {
  // each address gets its burst (10 × 90 = 900 RSA decryptions, ~0.25 s of CPU), then BUSY:
  // this is the measurement behind not requiring a client puzzle (PROTOCOL §10)
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'])
  const [r1, r2] = net.relays
  const started = performance.now()
  const floods = Array.from({ length: 10 }, (_, i) => {
    const { ch, cells } = rawChannel(net, r1.d, `127.0.1.${i + 1}`)
    return flood(ch, cells, r1.d, 150)
  })
  const [honest, ...attacks] = await Promise.all([honestBuilds(net, [r1.d, r2.d, net.final.d], 20), ...floods])
  t.comment(`10 addresses × 150 CREATEs and 20 honest builds in ${Math.round(performance.now() - started)} ms`)
  t.ok(attacks.every((a) => a.answered && a.created === 90 && a.busy === 60), 'each flooding address got exactly its burst, the rest BUSY')
  t.equal(r1.core.counters.refusals.MM_ERR_CREATE_RATE, 10 * 60)
  t.equal(honest, 20, 'every honest build during the flood succeeded and echoed')
})

t.test('a CREATE flood on a relay-to-relay channel: a larger budget, not none', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'], { init: () => ({ relayCreateBurst: 50, relayCreateRate: 5 }) })
  const [r1, r2] = net.relays
  t.same([RELAY_DEFAULTS.relayCreateRate, RELAY_DEFAULTS.relayCreateBurst], [200, 2000], 'the defaults: 200/s, burst 2000 per listed relay')
  // the test plays a listed relay that proves its identity on its channel to r2
  const me = identityFor('flooding-relay', '127.0.0.31')
  net.publish([...net.relays.map((r) => r.d), hopDescriptor(me, { role: 'relay', nickname: 'flooder', host: '127.0.0.31', port: 9, lifetimeMs: 3600_000 })])
  const { ch, cells } = rawChannel(net, r2.d, '127.0.0.31', { identityPrivate: me.privateDer, fingerprint: me.fingerprint, responderFingerprint: Buffer.from(r2.d.fingerprint, 'hex') })
  const [attack, honest] = await Promise.all([flood(ch, cells, r2.d, 200), honestBuilds(net, [r1.d, r2.d, net.final.d], 20)])
  t.ok(attack.answered)
  t.same([attack.created, attack.busy], [50, 150], 'a proven relay gets its own (larger) burst, then DESTROY BUSY')
  t.notOk(ch.closed)
  t.equal(r2.core.counters.channelsAuthenticated, 2, 'both relay channels proved their identity')
  t.equal(honest, 20, 'circuits extended by another relay (its own budget) all succeeded meanwhile')
})

t.test('a CREATE flood at the final hop while an honest client builds circuits', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11'], { final: { createBurst: 100, createRate: 10 } })
  const [r1] = net.relays
  t.same([FINAL_CREATE_RATE, FINAL_CREATE_BURST], [200, 2000], 'the defaults: 200/s, burst 2000 per previous hop\'s address')
  const { ch, cells } = rawChannel(net, net.final.d, '127.0.0.66')
  const [attack, honest] = await Promise.all([flood(ch, cells, net.final.d, 400), honestBuilds(net, [r1.d, net.final.d], 20)])
  t.ok(attack.answered)
  t.same([attack.created, attack.busy], [100, 300], 'the flooding address got its burst, the rest DESTROY BUSY before any RSA work')
  t.equal(net.final.rejected.filter((c) => c === 'MM_ERR_CREATE_RATE').length, 300, 'each refusal has its code')
  t.equal(honest, 20, 'every honest build (through a relay: another address) succeeded meanwhile')
  await net.clock.advance(1000)
  const later = await flood(ch, cells, net.final.d, 20, 1000)
  t.same([later.created, later.busy], [10, 10], 'the bucket refills at its rate')
})

t.test('a full circuit table refuses CREATE with BUSY and keeps its live circuits', async (t) => {
  await t.test('at a relay', async (t) => {
    const net = inProcessNet(t, ['127.0.0.11'], { maxCircuits: () => 50, init: () => ({ createRate: 100_000, createBurst: 100_000 }) })
    const [r1] = net.relays
    const live = await Promise.all([1, 2, 3].map(() => RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.70' })))
    const { ch, cells } = rawChannel(net, r1.d, '127.0.0.66')
    const attack = await flood(ch, cells, r1.d, 100)
    t.same([attack.created, attack.busy], [47, 53], 'the table filled up to 50 circuits, then BUSY')
    t.equal(r1.core.counters.refusals.MM_ERR_BUSY, 53, 'counted as MM_ERR_BUSY')
    for (const [i, c] of live.entries()) t.equal(await c.echo(`live ${i}`), `live ${i}`, `live circuit ${i} was not evicted`)
    const err = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.71' }).then(() => null, (e) => e)
    t.type(err, BuildError)
    t.same([err?.hop, err?.cell?.cmd, err?.cell?.data[0]], [1, ChannelCommand.DESTROY, HopError.BUSY], 'a new build is refused BUSY at hop 1')
    // a circuit leaves: there is room again
    ch.send(encodeChannelCell(1, ChannelCommand.DESTROY, Buffer.from([0])))
    await settle()
    const c = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.71' })
    t.equal(await c.echo('room again'), 'room again', 'after a DESTROY a new circuit is admitted')
  })

  await t.test('at the final hop', async (t) => {
    const net = inProcessNet(t, ['127.0.0.11'], { final: { maxCircuits: 10 } })
    const [r1] = net.relays
    const live = await Promise.all([1, 2, 3].map(() => RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.70' })))
    const { ch, cells } = rawChannel(net, net.final.d, '127.0.0.66')
    const attack = await flood(ch, cells, net.final.d, 20)
    t.same([attack.created, attack.busy], [7, 13], 'the table filled up to 10 circuits, then BUSY')
    t.equal(net.final.rejected.filter((c) => c === 'MM_ERR_BUSY').length, 13)
    t.equal(net.final.endpoint.circuits(), 10, 'the table is full, not over')
    for (const [i, c] of live.entries()) t.equal(await c.echo(`live ${i}`), `live ${i}`, `live circuit ${i} was not evicted`)
    const err = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.71' }).then(() => null, (e) => e)
    t.same([err?.hop, err?.error?.hop, err?.error?.code], [2, 1, HopError.BUSY], 'a new build is refused: ERROR BUSY from hop 1, relayed from the final hop')
    ch.send(encodeChannelCell(1, ChannelCommand.DESTROY, Buffer.from([0])))
    await settle()
    const c = await RawCircuit.build(net, [r1.d, net.final.d], { from: '127.0.0.71' })
    t.equal(await c.echo('room again'), 'room again', 'after a DESTROY a new circuit is admitted')
  })
})
