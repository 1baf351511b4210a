// Network settings in home/settings.json: defaults, save/load, atomic update, mode 0600,
// validation of what is saved, and refusing (never resetting) a corrupt file.

import t from 'tap'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSettings, saveSettings, updateSettings } from '../../../../src/roles/client/profile/settings.js'

async function tempHome (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-settings-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'home')
}

t.test('save, load, update', async t => {
  const home = await tempHome(t)
  t.same(await loadSettings(home), {}, 'no file: empty settings')
  const s = { relay: 'wss://127.0.0.1:9001', directoryKey: 'ab'.repeat(32), devnetDir: '/tmp/devnet', guard: { v: 2 as const, sampled: [{ fingerprint: 'cd'.repeat(32), addedAt: 1, attempts: 0, successes: 0 }] } }
  await saveSettings(home, s)
  t.same(await loadSettings(home), s)
  t.equal((await stat(join(home, 'settings.json'))).mode & 0o777, 0o600)
  t.equal((await stat(home)).mode & 0o777, 0o700)

  const bump = (cur: Awaited<ReturnType<typeof loadSettings>>) => ({ ...cur, guard: { v: 2 as const, sampled: cur.guard!.sampled.map((g) => ({ ...g, attempts: g.attempts + 1 })) } })
  const next = await updateSettings(home, bump)
  t.equal(next.guard?.sampled[0].attempts, 1)
  await Promise.all([1, 2, 3].map(async () => await updateSettings(home, bump)))
  t.equal((await loadSettings(home)).guard?.sampled[0].attempts, 4, 'concurrent updates are not lost')
  t.same(await readdir(home), ['settings.json'], 'no temp files left')
})

t.test('validation', async t => {
  const home = await tempHome(t)
  await t.rejects(saveSettings(home, { relay: '' }), { code: 'MM_ERR_BAD_INPUT' })
  await t.rejects(saveSettings(home, { guard: { fingerprint: 'x', failures: -1 } as never }), { code: 'MM_ERR_BAD_INPUT' })
  await t.rejects(updateSettings(home, () => ({ relay: 5 as never })), { code: 'MM_ERR_BAD_INPUT' })
  await saveSettings(home, { relay: 'r', extra: 'dropped' } as never)
  t.same(await loadSettings(home), { relay: 'r' }, 'unknown fields are dropped')

  await writeFile(join(home, 'settings.json'), '[1, 2]')
  await t.rejects(loadSettings(home), { code: 'MM_ERR_PROFILE_CORRUPT' })
  await writeFile(join(home, 'settings.json'), '{"directoryKey": 42}')
  await t.rejects(loadSettings(home), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'a bad pinned key is an error, not a reset')
  await t.rejects(updateSettings(home, s => s), { code: 'MM_ERR_PROFILE_CORRUPT' })
})
