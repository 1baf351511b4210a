// The guard module (src/roles/client/circuits/guards.ts, after Tor's guard-spec and
// path-spec §7) over a temp profile dir and the fake clock: the sampled set and its
// persistence, primary guards used in order, reachability and retry times, no relay
// outside the sample ever (MM_ERR_NO_GUARD instead), a guard kept through consensuses that
// omit it and dropped after the unlisted limit and its lifetime, path-bias verdicts that
// end in the guard being avoided, and the profile's state checked, old state carried over.
import t from 'tap'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Consensus } from '../../../../src/onion/directory/consensus.js'
import { DAY_MS, Guards, memoryGuardStore, profileGuardStore, type GuardReport, type GuardsInit } from '../../../../src/roles/client/circuits/guards.js'
import { FakeClock } from '../../../helpers/fake-clock.js'

const fp = (i: number) => i.toString(16).padStart(2, '0').repeat(32)
/** a new consensus object listing relays `ids` (each object is a new consensus to the guard module), those in `guards` (default all) with the Guard flag */
const consensus = (ids: number[], guards: number[] = ids) => ({
  relays: ids.map((i) => ({ fingerprint: fp(i), role: 'relay', nickname: `r${i}` })),
  flags: Object.fromEntries(ids.map((i) => [fp(i), guards.includes(i) ? ['Guard', 'Running', 'Stable'] : ['Running']])),
}) as unknown as Consensus
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i)

async function profile (o: Partial<GuardsInit> = {}) {
  const home = await mkdtemp(join(tmpdir(), 'mm-guards-'))
  const file = join(home, 'settings.json')
  const clock = new FakeClock(1_800_000_000_000)
  const saved = async () => JSON.parse(await readFile(file, 'utf8')).guard
  const guards = (more: Partial<GuardsInit> = {}) => new Guards({ store: profileGuardStore(home), clock, ...o, ...more })
  return { home, file, clock, saved, guards }
}

t.test('a sampled set is drawn, persisted, and its primary guards are used in order, across restarts', async (t) => {
  const p = await profile()
  const c = consensus(range(1, 41))
  const g = p.guards()
  const first = await g.pick(c)
  const state = await p.saved()
  t.equal(state.v, 2)
  t.equal(state.sampled.length, 20, 'the sample is filled to 20 usable guards (guard-spec MIN_FILTERED_SAMPLE)')
  t.ok(state.sampled.every((s: any) => s.addedAt <= p.clock.now() && s.addedAt > p.clock.now() - 12 * DAY_MS), 'dates added lie up to a tenth of the lifetime in the past')
  const primaries = await g.primaryGuards(c)
  t.equal(primaries.length, 3, 'three primary guards')
  t.same(primaries, state.sampled.slice(0, 3).map((s: any) => s.fingerprint), 'nothing confirmed yet: the first three in sample order')
  t.equal(first.guard.fingerprint, primaries[0])
  t.equal(first.primary, true)
  t.same(state.sampled.filter((s: any) => s.descriptor).map((s: any) => s.fingerprint), primaries, 'descriptors kept for the primary guards only')

  // a restart (a new Guards on the same profile) uses the same guard, in the same order
  const again = p.guards()
  t.equal((await again.pick(consensus(range(1, 41)))).guard.fingerprint, primaries[0], 'the same guard after a restart')
  t.same((await again.current()).sampled.map((s) => s.fingerprint), state.sampled.map((s: any) => s.fingerprint), 'the same sample')

  // primary order: the first reachable primary, then the next
  const picks: string[] = []
  for (let i = 0; i < 3; i++) {
    const pick = await again.pick(c)
    picks.push(pick.guard.fingerprint)
    t.equal(pick.primary, true)
    again.connectFailed(pick)
  }
  t.same(picks, primaries, 'primary guards are tried in order as each fails')
  const beyond = await again.pick(c)
  t.equal(beyond.primary, false, 'every primary unreachable: the next sampled guard, marked not primary')
  t.equal(beyond.guard.fingerprint, state.sampled[3].fingerprint)
  await p.clock.advance(30_000)
  t.equal((await again.pick(c)).guard.fingerprint, primaries[0], 'after its retry time the first primary guard is used again')

  // a circuit through it confirms it; confirmed guards come first
  await again.succeeded(await again.pick(c), 4)
  const s2 = await again.current()
  t.ok(s2.sampled[0].confirmedAt === p.clock.now(), 'confirmed at the first circuit built through it')
  t.same([s2.sampled[0].attempts, s2.sampled[0].successes], [1, 1], 'a path-bias success')
})

t.test('never a relay outside the sample: with every usable guard unreachable, MM_ERR_NO_GUARD', async (t) => {
  const p = await profile({ sampleSize: 4 })
  const c = consensus(range(1, 11))
  const g = p.guards()
  const sample = new Set((await g.primaryGuards(c)).concat())
  const all = new Set((await g.current()).sampled.map((s) => s.fingerprint))
  t.equal(all.size, 4)
  for (let i = 0; i < 4; i++) {
    const pick = await g.pick(c)
    t.ok(all.has(pick.guard.fingerprint), 'every pick is a sampled guard')
    g.connectFailed(pick)
  }
  const err = await g.pick(c).catch((e) => e)
  t.equal(err.code, 'MM_ERR_NO_GUARD', 'no fallback to a random relay: an error the user sees')
  t.match(err.message, /none of the 4 usable guards can be reached now; retrying in 30 s/)
  t.equal((await g.current()).sampled.length, 4, 'the sample did not grow because the network seems down')
  t.ok(sample.size > 0)
  await p.clock.advance(30_000)
  const back = await g.pick(c)
  t.ok(all.has(back.guard.fingerprint) && back.primary, 'after the retry time, a primary guard again')
  // the network stays down: failures double each guard's own retry time, but while every guard
  // is marked the primaries come back at the first delay (guard-spec INTERNET_LIKELY_DOWN)
  for (let round = 0; round < 3; round++) {
    for (let k = 0; k < 4; k++) {
      const pick = await g.pick(c).catch(() => undefined)
      if (pick) g.connectFailed(pick)
    }
    await t.rejects(g.pick(c), { code: 'MM_ERR_NO_GUARD' })
    await p.clock.advance(30_000)
    t.equal((await g.pick(c)).primary, true, `round ${round}: the first primary is retried 30 s after it failed`)
  }
})

t.test('a guard is kept while unlisted (not used), comes back, and leaves after 20 days unlisted or 120 days in all', async (t) => {
  const p = await profile({ random: () => 0 })
  const g = p.guards()
  const ids = range(1, 31)
  const [a, b] = await g.primaryGuards(consensus(ids))
  const without = (x: string) => consensus(ids.filter((i) => fp(i) !== x))
  // a consensus omits guard a (its relay was down 30 s): b is used meanwhile, a is kept
  const c1 = without(a)
  t.equal((await g.pick(c1)).guard.fingerprint, b, 'an unlisted guard is not used')
  let sa = (await g.current()).sampled.find((s) => s.fingerprint === a)!
  t.equal(sa.unlistedSince, p.clock.now(), 'kept, with the time it was first missing')
  await p.clock.advance(19 * DAY_MS)
  await g.observe(without(a))
  t.ok((await g.current()).sampled.some((s) => s.fingerprint === a), 'still kept after 19 days unlisted')
  t.equal((await g.pick(consensus(ids))).guard.fingerprint, a, 'listed again: it is the first primary guard again')
  sa = (await g.current()).sampled.find((s) => s.fingerprint === a)!
  t.equal(sa.unlistedSince, undefined, 'no longer unlisted')
  // unlisted for more than 20 days: gone
  await g.observe(without(a))
  await p.clock.advance(20 * DAY_MS + 1)
  await g.observe(without(a))
  t.notOk((await g.current()).sampled.some((s) => s.fingerprint === a), 'dropped after 20 days unlisted')
  t.not((await g.pick(consensus(ids))).guard.fingerprint, a, 'and not used again when it reappears (it is a new relay to the sample)')
  // the lifetime: guards added at the start (random () => 0: no back-dating) leave after 120 days, listed or not
  const q = await profile({ random: () => 0 })
  const h = q.guards()
  const before = (await h.primaryGuards(consensus(ids)))[0]
  const added = q.clock.now()
  await h.succeeded(await h.pick(consensus(ids)), 4)
  await q.clock.advance(120 * DAY_MS)
  await h.observe(consensus(ids))
  t.match((await h.current()).sampled.find((s) => s.fingerprint === before), { addedAt: added, attempts: 1 }, 'kept for 120 days')
  await q.clock.advance(1)
  await h.observe(consensus(ids))
  // the whole sample left at once; the refill may draw the same relay again, as a new guard
  const now = (await h.current()).sampled.find((s) => s.fingerprint === before)
  t.ok(now === undefined || (now.addedAt === q.clock.now() && now.attempts === 0 && now.confirmedAt === undefined), 'gone after 120 days (at most drawn again as a new guard)')
  // configurable limits
  const r = await profile({ random: () => 0, removeUnlistedAfterMs: 1000, lifetimeMs: 10_000 })
  const k = r.guards()
  const x = (await k.primaryGuards(consensus(ids)))[0]
  await k.observe(without(x))
  await r.clock.advance(1001)
  await k.observe(without(x))
  t.notOk((await k.current()).sampled.some((s) => s.fingerprint === x), 'a shorter unlisted limit')
})

t.test('path bias (path-spec §7): a guard whose circuits fail past it is reported, then avoided for good', async (t) => {
  const reports: GuardReport[] = []
  const p = await profile({ pathBias: { minCircuits: 20 }, onReport: (r) => reports.push(r) })
  const c = consensus(range(1, 31))
  const g = p.guards()
  const bad = await g.pick(c)
  // 14 of 20 built: 70 % is fine
  for (let i = 0; i < 14; i++) await g.succeeded(bad, 4)
  for (let i = 0; i < 6; i++) await g.pathFailed(bad)
  t.same(reports, [], '70 % built: no report')
  await g.pathFailed(bad) // 14/21 = 66 %
  t.match(reports, [{ verdict: 'notice', avoided: false, attempts: 21, successes: 14 }], 'below 70 %: a notice')
  for (let i = 0; i < 8; i++) await g.pathFailed(bad) // 14/29 = 48 %
  t.match(reports.map((r) => r.verdict), ['notice', 'warn'], 'below 50 %: a warning, once')
  for (let i = 0; i < 18; i++) await g.pathFailed(bad) // 14/47 = 29.8 %
  t.equal(reports.length, 3)
  t.match(reports[2], { verdict: 'extreme', avoided: true, fingerprint: bad.guard.fingerprint })
  t.match(reports[2].message, /only 14 of 47 circuits .* no longer used/)
  const next = await g.pick(c)
  t.not(next.guard.fingerprint, bad.guard.fingerprint, 'the avoided guard is not used')
  t.equal(next.primary, true, 'the next primary guard takes its place')
  t.notOk((await g.primaryGuards(c)).includes(bad.guard.fingerprint), 'and is no longer primary')
  // after a restart it stays avoided
  const again = p.guards()
  t.not((await again.pick(consensus(range(1, 31)))).guard.fingerprint, bad.guard.fingerprint, 'avoided across restarts')
  t.equal((await again.current()).sampled.find((s) => s.fingerprint === bad.guard.fingerprint)?.avoided, true)
  // an honest guard's occasional failures stay below every threshold
  const q = await profile({ pathBias: { minCircuits: 20 }, onReport: (r) => reports.push(r) })
  const h = q.guards()
  const ok = await h.pick(c)
  for (let i = 0; i < 100; i++) await (i % 5 === 0 ? h.pathFailed(ok) : h.succeeded(ok, 4))
  t.equal(reports.length, 3, '80 % built: never reported')
  // counts are halved past 300 attempts (pb_scalecircs), so old history fades
  for (let i = 0; i < 250; i++) await h.succeeded(ok, 4)
  const st = (await h.current()).sampled.find((s) => s.fingerprint === ok.guard.fingerprint)!
  t.ok(st.attempts <= 300 && st.attempts >= 150, `scaled: ${st.attempts} attempts`)
})

t.test('the guard state in the profile is checked, never silently reset; the old one-guard state is carried over', async (t) => {
  const p = await profile()
  await writeFile(p.file, JSON.stringify({ directoryKey: 'ab'.repeat(32), guard: { v: 2, sampled: [{ fingerprint: fp(1), addedAt: -1, attempts: 0, successes: 0 }] } }))
  await t.rejects(p.guards().pick(consensus([1, 2, 3])), { code: 'MM_ERR_PROFILE_CORRUPT' })
  await writeFile(p.file, JSON.stringify({ guard: { v: 2, sampled: [{ fingerprint: fp(1), addedAt: 1, attempts: 1, successes: 2 }] } }))
  await t.rejects(p.guards().pick(consensus([1, 2, 3])), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'more successes than attempts')
  await writeFile(p.file, JSON.stringify({ directoryKey: 'ab'.repeat(32), guard: { fingerprint: fp(7), failures: 2 } }))
  const g = p.guards()
  t.equal((await g.pick(consensus(range(1, 10)))).guard.fingerprint, fp(7), 'the guard of an earlier build stays the first guard')
  const s = await p.saved()
  t.equal(s.sampled[0].fingerprint, fp(7))
  t.equal(s.sampled[0].addedAt, p.clock.now(), 'its lifetime counts from now')
  t.equal(JSON.parse(await readFile(p.file, 'utf8')).directoryKey, 'ab'.repeat(32), 'other settings kept')
  t.throws(() => new Guards({ store: memoryGuardStore(), primary: 4 }), { code: 'MM_ERR_CONFIG' })
})

t.test('guards are taken only from relays with the Guard flag (PROTOCOL §7.3)', async (t) => {
  const p = await profile()
  const flagged = range(30, 40)
  const c = consensus(range(1, 41), flagged)
  const g = p.guards()
  await g.pick(c)
  const sampled = (await g.current()).sampled.map((s) => s.fingerprint)
  t.ok(sampled.length > 0, 'a sample is drawn')
  t.ok(sampled.every((f) => flagged.map(fp).includes(f)), `every sampled guard is Guard-flagged (${sampled.length} sampled from ${flagged.length})`)
  const none = await profile()
  const err = await none.guards().pick(consensus(range(1, 41), [])).then(() => null, (e) => e)
  t.equal(err?.code, 'MM_ERR_NO_GUARD', 'no Guard-flagged relay: no guard at all, never a fresh relay instead')
})

t.test('the newest consensus validAfter observed is kept in the profile (PROTOCOL §7.7), so a restart refuses older ones', async (t) => {
  const p = await profile()
  const g = p.guards()
  t.equal(await g.newestValidAfter(), 0, 'none before any consensus')
  await g.observe({ ...consensus(range(1, 10)), validAfter: 1_800_000_000_000 } as Consensus)
  await g.observe({ ...consensus(range(1, 10)), validAfter: 1_799_000_000_000 } as Consensus)
  t.equal((await p.saved()).newestValidAfter, 1_800_000_000_000, 'the newest one is in settings.json (an older observed never lowers it)')
  t.equal(await p.guards().newestValidAfter(), 1_800_000_000_000, 'and read back by a restarted client')
  const bad = await p.saved()
  await writeFile(p.file, JSON.stringify({ guard: { ...bad, newestValidAfter: -1 } }))
  await t.rejects(p.guards().newestValidAfter(), /newestValidAfter must be a non-negative integer/, 'a damaged mark is refused, not reset to 0')
})
