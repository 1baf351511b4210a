// The outbox kept in the profile (src/roles/client/profile/outbox-file.ts): sealed at
// rest (no text, no recipient in the file), opened only with the same user's keys,
// tampering refused, private file mode, bounded, removed when empty.
import t from 'tap'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { MAX_KEPT, OutboxFile } from '../../../../src/roles/client/profile/outbox-file.js'
import type { SavedItem } from '../../../../src/roles/client/outbox.js'

async function tempHome (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-outboxfile-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'home')
}

const items: SavedItem[] = [
  { clientId: 'c-1', target: { room: 'lobby' }, text: 'meet at the usual place', queuedAt: 1_700_000_000_000, state: 'queued' },
  { clientId: 'c-2', target: { to: 'bob' }, text: 'the secret is 42', queuedAt: 1_700_000_000_001, state: 'failed', error: 'bob has no keys yet' },
]

t.test('sealed at rest, opened with the same keys only', async (t) => {
  const home = await tempHome(t)
  const secret = randomBytes(64)
  const file = new OutboxFile(home, 'alice', secret)
  t.same(await file.load(), [], 'nothing kept at first')
  await file.save(items)
  const raw = await readFile(file.path, 'utf8')
  for (const s of ['usual place', 'secret is 42', 'bob', 'lobby', 'c-1']) t.notOk(raw.includes(s), `"${s}" is not in the file`)
  t.equal((await stat(file.path)).mode & 0o777, 0o600, 'a private file')
  t.same(await new OutboxFile(home, 'alice', secret).load(), items, 'read back by the next run')
  await t.rejects(new OutboxFile(home, 'alice', randomBytes(64)).load(), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'other keys cannot open it')
  const f = JSON.parse(raw)
  const sealed = Buffer.from(f.sealed, 'base64')
  sealed[3] ^= 1
  await writeFile(file.path, JSON.stringify({ ...f, sealed: sealed.toString('base64') }))
  await t.rejects(file.load(), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'a flipped bit is refused')
  await writeFile(file.path, '{"version":2}')
  await t.rejects(file.load(), { code: 'MM_ERR_PROFILE_CORRUPT' })
  await file.save([])
  await t.rejects(stat(file.path), { code: 'ENOENT' }, 'an empty outbox leaves no file')
})

t.test('bounded, and only the newest of writes asked for meanwhile is written', async (t) => {
  const home = await tempHome(t)
  const file = new OutboxFile(home, 'alice', randomBytes(64))
  const many = Array.from({ length: MAX_KEPT + 20 }, (_, i): SavedItem => ({ clientId: `c${i}`, target: { room: 'lobby' }, text: 'x'.repeat(4000), queuedAt: i, state: 'queued' }))
  await Promise.all([file.save(many.slice(0, 3)), file.save(many.slice(0, 5)), file.save(many)])
  const back = await file.load()
  t.equal(back.length, MAX_KEPT, `at most ${MAX_KEPT} kept`)
  t.same(back.map((i) => i.clientId), many.slice(0, MAX_KEPT).map((i) => i.clientId), 'the last write wins')
})
