// The real circuit manager and guard module over in-process relays (test/roles/relay/
// harness.ts: RelayCore instances, memory channels, the fake clock) with a signed consensus
// the relays serve as directory caches: every connection the client opens reaches its guard
// alone (the consensus fetched through it on a one-hop circuit, PROTOCOL §7.3, then the
// circuits), an older consensus from the guard is refused and the next guard asked, a guard
// that withholds every EXTEND is charged by path bias without any later hop blamed, and with
// no usable guard the client reports MM_ERR_NO_GUARD instead of entering anywhere else.
import { DIRECTORY_REFUSED } from '../../../src/onion/circuits/directory-cache.js'
import t, { type Test } from 'tap'
import { allFlags, signConsensus, verifyConsensus, type Consensus } from '../../../src/onion/directory/consensus.js'
import { ChannelCommand } from '../../../src/onion/cells/channel-cell.js'
import { silentLogger, type Logger } from '../../../src/log.js'
import { CircuitManager } from '../../../src/roles/client/circuit-manager.js'
import { Guards, memoryGuardStore, type GuardReport, type GuardStore } from '../../../src/roles/client/circuits/guards.js'
import { directoryKey } from '../../helpers/net.js'
import { InProcessNet } from '../relay/harness.js'

const dk = directoryKey()
const hosts = Array.from({ length: 8 }, (_, i) => `127.0.0.${31 + i}`)
const req = { method: 'GET', path: '/ping', headers: {}, body: Buffer.from('ping') }

/** the address the test's client dials from */
const CLIENT_HOST = '127.0.0.77'

/** relays on `hosts` (named so that their descriptors verify) and the echo final hop */
function network (t: Test): InProcessNet {
  const net = new InProcessNet()
  hosts.forEach((h, i) => net.addRelay(h, { name: `guardtest${i}` }))
  net.addFinal()
  t.teardown(() => net.close())
  return net
}

/** moves the fake clock in `step`s until `p` settles (the client's timers fire whenever its I/O gets to them) */
async function advancing<T> (net: InProcessNet, p: Promise<T>, step: number): Promise<T> {
  let done = false
  void p.then(() => { done = true }, () => { done = true })
  for (let i = 0; i < 100 && !done; i++) await net.clock.advance(step)
  return await p
}

/** signs a consensus of the net's relays valid from `from` for `ms`, and has every relay serve it */
function publish (net: InProcessNet, from = net.clock.now() - 1000, ms = 3600_000): Consensus {
  const doc = signConsensus({ v: 2, method: 1, validAfter: from, validUntil: from + ms, relays: net.relays.map((r) => r.d), server: net.final.d, flags: allFlags(net.relays.map((r) => r.d)) }, dk)
  net.consensus = doc
  net.raw = JSON.stringify(doc)
  return doc
}

/** a logger that keeps the fields of each debug line */
function recording (): { log: Logger, lines: { msg: string, fields?: Record<string, unknown> }[] } {
  const lines: { msg: string, fields?: Record<string, unknown> }[] = []
  const log: Logger = { ...silentLogger, debug: (msg, fields) => { lines.push({ msg, fields }) }, child: () => log }
  return { log, lines }
}

/** a client whose profile already holds a sample (a second run): its first consensus comes through its guard */
async function client (t: Test, net: InProcessNet, o: { store?: GuardStore, log?: Logger, guards?: Partial<ConstructorParameters<typeof Guards>[0]>, pin?: string } = {}) {
  const store = o.store ?? memoryGuardStore()
  await new Guards({ store, clock: net.clock, ...o.guards }).observe(verifyConsensus(JSON.parse(net.raw!), o.pin ?? dk.fingerprint, net.clock.now()))
  const guards = new Guards({ store, clock: net.clock, ...o.guards })
  const dialed: string[] = []
  const cm = new CircuitManager({
    network: { relays: ['https://192.0.2.1:1'], directoryKey: o.pin ?? dk.fingerprint }, // never reached: a bootstrap relay only for a first run
    guards,
    clock: net.clock,
    log: o.log ?? silentLogger,
    timeoutMs: 5000,
    dial: async (d) => { dialed.push(d.fingerprint); return net.open(d, { from: CLIENT_HOST }) },
  })
  t.teardown(() => cm.close())
  const primaries = await guards.primaryGuards(net.consensus)
  return { cm, guards, dialed, primaries }
}

t.test('every connection reaches the guard: the consensus through it on a one-hop circuit, then the circuits', async (t) => {
  const net = network(t)
  publish(net, net.clock.now() - 1000, 120_000)
  const { cm, dialed, primaries } = await client(t, net)
  const res = await cm.request(req)
  t.equal(res.body.toString(), 'ping')
  const guard = primaries[0]
  t.same(cm.directoryFetches, [guard], 'the first consensus came through the first primary guard')
  t.same([...new Set(dialed)], [guard], 'the client opened channels to its guard only')
  t.equal(cm.describe()[0].fingerprint, guard, 'and enters through it')
  const guardRelay = net.relays.find((r) => r.d.fingerprint === guard)!
  t.ok(guardRelay.opened.length >= 1, 'the guard extended the circuit onward')

  // a new consensus is due: fetched through the same guard, over the same channel
  publish(net, net.clock.now(), 3600_000)
  await net.clock.advance(70_000)
  await cm.newCircuit()
  t.same(cm.directoryFetches, [guard, guard], 'the refresh came through the guard too')
  t.same([...new Set(dialed)], [guard], 'still no other relay ever saw a connection from the client')
  t.equal(dialed.length, 1, 'one channel, shared by the directory fetches and the circuits')
})

t.test('a guard refusing directory requests from our address (429, others behind it) is asked again, not marked failed', async (t) => {
  const net = network(t)
  publish(net)
  const { cm, primaries } = await client(t, net)
  const first = net.relays.find((r) => r.d.fingerprint === primaries[0])!
  // the relay's meter says no (DIRECTORY_REFUSED is what relay/from-prev.ts passes past the budget)
  net.rawOf.set(first.d.host, DIRECTORY_REFUSED as unknown as string)
  await cm.refreshConsensus()
  t.same(cm.directoryFetches, [primaries[0], primaries[1]], 'refused by the first guard, fetched through the second')
  net.rawOf.delete(first.d.host)
  await cm.refreshConsensus()
  t.equal(cm.directoryFetches.at(-1), primaries[0], 'the first guard is still the first choice: a 429 is no failure of it')
})

t.test('three pinned authorities: a consensus the hostile one signed alone, from the guard, is refused and the next guard asked', async (t) => {
  const net = network(t)
  const [dk2, hostile] = [directoryKey(), directoryKey()]
  const pin = [dk, dk2, hostile].map((k) => k.fingerprint).join(',')
  const body = (from: number, relays = net.relays.map((r) => r.d)) => ({ v: 2 as const, method: 1, validAfter: from, validUntil: from + 3600_000, relays, server: net.final.d, flags: allFlags(relays) })
  const honest = signConsensus(body(net.clock.now() - 1000), dk, dk2)
  net.consensus = honest
  net.raw = JSON.stringify(honest)
  const { cm, dialed, primaries } = await client(t, net, { pin })
  await cm.refreshConsensus()
  t.same(cm.directoryFetches, [primaries[0]], 'the honest consensus (2 of 3 signatures) is taken through the first guard')
  // the first guard now serves a newer document listing only itself, signed by the hostile authority alone
  const first = net.relays.find((r) => r.d.fingerprint === primaries[0])!
  net.rawOf.set(first.d.host, JSON.stringify(signConsensus(body(net.clock.now(), [first.d]), hostile)))
  const got = await cm.refreshConsensus()
  t.equal(got.validAfter, honest.validAfter, 'the client keeps the honest one')
  t.equal(got.relays.length, net.relays.length, 'with every relay')
  t.same(cm.directoryFetches, [primaries[0], primaries[0], primaries[1]], 'refused from the first guard (1 signature of the 2 needed), fetched through the second')
  t.same([...new Set(dialed)], primaries.slice(0, 2), 'only guards were contacted')
})

t.test('an older consensus from the guard is refused and the next primary guard is asked', async (t) => {
  const net = network(t)
  const old = publish(net, net.clock.now() - 60_000, 3600_000)
  const fresh = publish(net, net.clock.now() - 1000, 3600_000)
  const { cm, dialed, primaries } = await client(t, net)
  await cm.refreshConsensus()
  t.same(cm.directoryFetches, [primaries[0]])
  // the first guard now serves the older (still valid, properly signed) document
  const first = net.relays.find((r) => r.d.fingerprint === primaries[0])!
  net.rawOf.set(first.d.host, JSON.stringify(old))
  const got = await cm.refreshConsensus()
  t.equal(got.validAfter, fresh.validAfter, 'the client keeps the newer one')
  t.same(cm.directoryFetches, [primaries[0], primaries[0], primaries[1]], 'refused from the first guard, fetched through the second primary guard')
  t.same([...new Set(dialed)], primaries.slice(0, 2), 'only guards were contacted')
})

t.test('a guard that withholds every EXTEND: path bias avoids it, no later hop is blamed, the next primary guard carries on', async (t) => {
  const net = network(t)
  publish(net)
  const reports: GuardReport[] = []
  const rec = recording()
  const { cm, guards, primaries } = await client(t, net, { log: rec.log, guards: { pathBias: { minCircuits: 4 }, onReport: (r) => reports.push(r) } })
  await cm.request(req)
  const bad = net.relays.find((r) => r.d.fingerprint === primaries[0])!
  // from now on the guard answers CREATE but drops every RELAY cell the client sends it (each
  // EXTEND); it stays an honest middle or exit for other relays, so any later path may use it
  net.listeners.get(`${bad.d.host}:443`)!.intercept = (f, openedBy) => openedBy !== CLIENT_HOST || f.data[4] !== ChannelCommand.RELAY
  const building = cm.newCircuit()
  const failed = () => rec.lines.filter((l) => l.msg === 'circuit build failed').map((l) => l.fields)
  // fake time passes only while a build waits on the guard that drops its EXTENDs; the fourth
  // build, through the next primary guard, needs none (on a slow host a 5 s step once timed it
  // out before its honest hops had answered)
  for (let i = 0; i < 100 && failed().length < 3; i++) await net.clock.advance(5000)
  const circuit = await building
  const failures = failed()
  t.equal(failures.length, 3, 'three builds through the guard timed out at hop 2')
  t.ok(failures.every((f) => f?.hop === 0 && f?.at === 2), 'each timeout blamed no hop (so no honest middle was excluded)')
  // 1 of 4 circuits built past it (25 %, under path-spec's extreme 30 %): avoided at once, the same build goes on
  t.match(reports, [{ fingerprint: bad.d.fingerprint, verdict: 'extreme', avoided: true, attempts: 4, successes: 1 }], 'reported loudly and avoided')
  t.equal(circuit.path[0].fingerprint, primaries[1], 'the fourth attempt entered through the next primary guard')
  const res = await cm.request(req)
  t.equal(res.status, 200)
  t.equal(cm.describe()[0].fingerprint, primaries[1], 'which carries the circuits from now on')
  t.notOk((await guards.primaryGuards(net.consensus)).includes(bad.d.fingerprint))
})

t.test('no usable guard: MM_ERR_NO_GUARD, and no relay outside the sample is ever tried', async (t) => {
  const net = network(t)
  publish(net)
  const { cm, dialed, guards } = await client(t, net, { guards: { sampleSize: 3 } })
  await cm.request(req)
  const sample = (await guards.current()).sampled.map((s) => s.fingerprint)
  t.equal(sample.length, 3)
  // every sampled guard goes away (their addresses stop answering); the other relays stay up
  for (const fp of sample) {
    const r = net.relays.find((x) => x.d.fingerprint === fp)!
    net.listeners.delete(`${r.d.host}:443`)
    r.core.closeAll()
  }
  await cm.newCircuit().catch(() => {})
  const err = await advancing(net, cm.request(req, { retries: 0 }).catch((e) => e), 300)
  t.equal(err.code, 'MM_ERR_NO_GUARD', 'an error the user sees')
  t.match(err.message, /will not enter through another relay/)
  t.ok(dialed.every((fp) => sample.includes(fp)), 'every channel the client tried went to a sampled guard')
})
