// The guard module (src/roles/client/circuits/guards.ts) over a temp profile dir: which
// entry each pick gives, what adopt, succeeded and failed write to settings.json, when the
// guard is replaced, and that the state outlives the process (a new Guards reads it).
import t from 'tap'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Consensus } from '../../../../src/onion/directory/consensus.js'
import { Guards, memoryGuardStore, profileGuardStore } from '../../../../src/roles/client/circuits/guards.js'

const fp = (i: number) => i.toString(16).padStart(2, '0').repeat(32)
const consensus = (...ids: number[]) => ({ relays: ids.map((i) => ({ fingerprint: fp(i) })) }) as unknown as Consensus
const none = new Set<string>()

async function profile () {
  const home = await mkdtemp(join(tmpdir(), 'mm-guards-'))
  const file = join(home, 'settings.json')
  const saved = async () => {
    try { return JSON.parse(await readFile(file, 'utf8')).guard } catch { return 'no file' }
  }
  return { home, file, saved, guards: (maxFailures?: number) => new Guards({ store: profileGuardStore(home), maxFailures }) }
}

t.test('no guard yet: one is drawn from the listed relays, and kept once adopted', async (t) => {
  const p = await profile()
  const g = p.guards()
  const c = consensus(1, 2, 3, 4)
  const pick = await g.pick(c, new Set([fp(1), fp(2)]))
  t.ok(pick.entry === fp(3) || pick.entry === fp(4), 'drawn among relays not excluded')
  t.match(pick, { isGuard: true, fresh: true, kept: undefined })
  t.equal(await p.saved(), 'no file', 'nothing written before a path is found')
  await g.adopt(pick)
  t.same(await p.saved(), { fingerprint: pick.entry, failures: 0 }, 'kept in settings.json')
  // a new process (a new Guards) finds it and keeps it
  const again = await p.guards().pick(c, none)
  t.same(again, { entry: pick.entry, isGuard: true, fresh: false, kept: { fingerprint: pick.entry, failures: 0 } })
  await p.guards().adopt(again)
  t.same(await p.saved(), { fingerprint: pick.entry, failures: 0 }, 'adopting a kept guard changes nothing')
  // the draw covers the pool: over many picks every listed relay comes up
  const seen = new Set<string>()
  const mem = new Guards({ store: memoryGuardStore() })
  for (let i = 0; i < 200; i++) seen.add((await mem.pick(c, none)).entry!)
  t.equal(seen.size, 4, 'every relay can be drawn')
})

t.test('failures: counted for the guard, reset by a success, the guard replaced after maxFailures', async (t) => {
  const p = await profile()
  await writeFile(p.file, JSON.stringify({ guard: { fingerprint: fp(1), failures: 0 } }))
  const g = p.guards()
  const c = consensus(1, 2, 3)
  let pick = await g.pick(c, none)
  t.equal(pick.entry, fp(1))
  await g.failed(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 1 })
  await g.failed(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 2 })
  pick = await g.pick(c, none)
  await g.succeeded(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 0 }, 'a circuit through it resets the count')
  await g.succeeded(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 0 })
  for (let i = 1; i <= 2; i++) await g.failed(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 2 })
  await g.failed(pick)
  t.equal(await p.saved(), undefined, 'the third consecutive failure forgets the guard')
  const next = await g.pick(c, none)
  t.match(next, { isGuard: true, fresh: true }, 'the next build draws a new one')
  // another threshold
  const q = await profile()
  await writeFile(q.file, JSON.stringify({ guard: { fingerprint: fp(2), failures: 0 } }))
  const one = q.guards(1)
  await one.failed(await one.pick(c, none))
  t.equal(await q.saved(), undefined, 'maxFailures 1: replaced at once')
})

t.test('while the kept guard is excluded, the build enters elsewhere and the guard is not charged', async (t) => {
  const p = await profile()
  await writeFile(p.file, JSON.stringify({ guard: { fingerprint: fp(1), failures: 1 } }))
  const g = p.guards()
  const pick = await g.pick(consensus(1, 2, 3), new Set([fp(1)]))
  t.same(pick, { isGuard: false, fresh: false, kept: { fingerprint: fp(1), failures: 1 } }, 'no entry: the path draws one')
  await g.adopt(pick)
  await g.failed(pick)
  await g.succeeded(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 1 }, 'the guard and its count are untouched')
})

t.test('a guard the consensus no longer lists is replaced; a failure of another relay starts its own count', async (t) => {
  const p = await profile()
  await writeFile(p.file, JSON.stringify({ guard: { fingerprint: fp(9), failures: 2 } }))
  const g = p.guards()
  const pick = await g.pick(consensus(1), none)
  t.same(pick, { entry: fp(1), isGuard: true, fresh: true, kept: { fingerprint: fp(9), failures: 2 } })
  await g.succeeded(pick)
  t.same(await p.saved(), { fingerprint: fp(9), failures: 2 }, 'success of a not yet adopted entry writes nothing')
  await g.failed(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 1 }, 'a failure is counted for the entry, from 1')
  await g.adopt(pick)
  t.same(await p.saved(), { fingerprint: fp(1), failures: 0 })
  // nothing usable: no entry, nothing to count
  const empty = await g.pick(consensus(1), new Set([fp(1)]))
  t.same(empty, { isGuard: false, fresh: false, kept: { fingerprint: fp(1), failures: 0 } })
  const bare = await new Guards({ store: memoryGuardStore() }).pick(consensus(), none)
  t.same(bare, { isGuard: false, fresh: false, kept: undefined })
})

t.test('the guard state in the profile is checked, never silently reset', async (t) => {
  const p = await profile()
  await writeFile(p.file, JSON.stringify({ directoryKey: 'ab'.repeat(32), guard: { fingerprint: fp(1), failures: -1 } }))
  await t.rejects(p.guards().pick(consensus(1), none), { code: 'MM_ERR_PROFILE_CORRUPT' })
  await writeFile(p.file, JSON.stringify({ directoryKey: 'ab'.repeat(32), guard: { fingerprint: fp(1), failures: 0, extra: 1 } }))
  const g = p.guards()
  await g.failed(await g.pick(consensus(1), none))
  t.same(JSON.parse(await readFile(p.file, 'utf8')), { directoryKey: 'ab'.repeat(32), guard: { fingerprint: fp(1), failures: 1 } }, 'other settings kept, unknown guard fields dropped')
})
