// The path-compromise simulation (bench/lib/path-sim.ts, issue 15 item 8) on the real
// guard module, path choice and consensus checks, with the fake clock and no sockets:
// over 30 simulated days the share of clients whose guard or directory source is hostile
// stays within f + 0.01 with the new code, while the old client (a consensus from a random
// relay every fetch) is linked for almost every client; a hostile cache's forged or stale
// consensus is never adopted, nor one signed by the hostile authority (one of the three
// pinned) alone; Sybils in one /16 never hold both ends of a circuit. The
// guard draws are seeded, so the figures repeat.
import t from 'tap'
import { simulate, table } from '../../bench/lib/path-sim.js'

const base = { relays: 100, stepHours: 12, circuitsPerDay: 0.2, seed: 7 }

t.test('the share of clients with a hostile guard or directory source stays at the attacker\'s share (f = 5 %)', async (t) => {
  const f = 0.05
  const now = await simulate({ ...base, f, code: 'new', clients: 800 })
  const before = await simulate({ ...base, f, code: 'old', clients: 250 })
  t.comment(`\n${table([{ old: before, new: now }])}`)
  t.ok(now.eitherEver <= f + 0.01, `new code: ${now.eitherEver} of clients ever had a hostile guard or directory source (≤ ${f + 0.01})`)
  t.ok(now.eitherEver >= f - 0.02, `and about f: the simulation does put clients on hostile guards (${now.eitherEver})`)
  t.ok(now.directoryEver <= f + 0.01, `directory sources: ${now.directoryEver} (each fetch through the client's own guard)`)
  t.equal(now.wentBack, 0)
  t.equal(now.noGuard, 0)
  t.ok(now.guardsPerClient < 1.05, `clients keep their guard through relays' absences (${now.guardsPerClient} guards each)`)
  // the old client fetched each consensus from a random relay: nearly every client is exposed
  t.ok(before.eitherEver > 0.9, `old code: ${before.eitherEver} (the test fails on it)`)
  t.ok(now.guardExitCircuits <= f * f + 0.01, `circuits with hostile guard and exit: ${now.guardExitCircuits} (f² = ${f * f})`)
})

t.test('a hostile cache serving a stale or forged consensus: the new client is never taken back in time nor adopts a forgery', async (t) => {
  const small = { ...base, f: 0.2, clients: 100, days: 10 }
  const stale = await simulate({ ...small, code: 'new', cache: 'stale' })
  const staleOld = await simulate({ ...small, code: 'old', cache: 'stale' })
  t.equal(stale.wentBack, 0, `stale: never an older consensus than the one held (${stale.hostileRefused} refused)`)
  t.ok(stale.hostileRefused > 0, 'stale: hostile guards did serve older ones')
  t.ok(staleOld.wentBack > 0, `stale: the old client went back ${staleOld.wentBack} times`)
  const forged = await simulate({ ...small, code: 'new', cache: 'forged' })
  t.equal(forged.hostileAccepted, 0, `forged: none adopted (${forged.hostileRefused} refused by the signature check)`)
  t.ok(forged.hostileRefused > 0)
  t.comment(`hostile guard or source, ever: stale ${stale.eitherEver}, forged ${forged.eitherEver} (a guard that serves what is refused is left for the next guard)`)
})

t.test('one hostile authority among three: no client ever accepts a consensus it signed alone', async (t) => {
  const r = await simulate({ ...base, f: 0.2, clients: 100, days: 10, code: 'new', cache: 'authority' })
  t.equal(r.hostileAuthorityAlone, 0, 'never adopted (1 signature of the 2 the pin requires)')
  t.equal(r.hostileAccepted, 0, 'no hostile document accepted at all')
  t.ok(r.hostileRefused > 0, `hostile guards did serve it (${r.hostileRefused} times, every time refused)`)
  t.equal(r.wentBack, 0)
  const old = await simulate({ ...base, f: 0.2, clients: 50, days: 10, code: 'old', cache: 'authority' })
  t.equal(old.hostileAuthorityAlone, 0, 'the old client\'s random caches too: the threshold holds whoever serves it')
})

t.test('Sybils in one /16 never hold guard and exit of one circuit', async (t) => {
  const r = await simulate({ ...base, f: 0.2, code: 'new', clients: 100, days: 10, sybils: 'subnet' })
  t.ok(r.guardEver > 0.05, `they are guards for some clients (${r.guardEver})`)
  t.ok(r.circuits > 0)
  t.equal(r.guardExitCircuits, 0, 'but no path has two hops in one /16')
})
