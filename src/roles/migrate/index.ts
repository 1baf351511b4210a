// `marshmello migrate`: copies users (password hashes, public keys, creation time)
// and messages (ids, client ids, sentAt, expiresAt) from one store to another, e.g.
// the embedded SQLite/nedb files to PostgreSQL/MongoDB before scaling out. Idempotent:
// a user already present (same name) and a message already present (same sender and
// client id) are skipped, so a second run stores nothing twice. Verifies at the end
// that every source record is in the target. Leaves token revocations out (they
// expire with their tokens) and never prints a password hash or a message body.
import { MarshmelloError } from '../../errors.js'
import type { MessageStore, UserStore } from '../../storage/types.js'

export interface MigrateStores {
  fromUsers?: UserStore
  toUsers?: UserStore
  fromMessages?: MessageStore
  toMessages?: MessageStore
}

export interface MigrateCounts {
  /** records read from the source */
  read: number
  /** stored by this run */
  copied: number
  /** already in the target (a previous run, or the same record) */
  present: number
  /** in the target under the same key but with different content: kept, not overwritten */
  conflicts: number
}

export interface MigrateResult { users?: MigrateCounts, messages?: MigrateCounts }

const zero = (): MigrateCounts => ({ read: 0, copied: 0, present: 0, conflicts: 0 })

/** Thrown when, after copying, a source record cannot be found in the target. */
const verifyFailed = (what: string) => new MarshmelloError('MM_ERR_MIGRATE_VERIFY', what)

export async function migrateUsers (from: UserStore, to: UserStore, progress?: (c: MigrateCounts) => void): Promise<MigrateCounts> {
  const c = zero()
  for await (const u of from.all()) {
    c.read++
    try {
      await to.create({ username: u.username, passwordHash: u.passwordHash, keys: u.keys, createdAt: u.createdAt })
      c.copied++
    } catch (err) {
      if ((err as { code?: string }).code !== 'MM_ERR_USER_EXISTS') throw err
      const there = await to.get(u.username)
      if (there?.passwordHash === u.passwordHash && there.keys?.enc === u.keys?.enc && there.keys?.sign === u.keys?.sign) c.present++
      else c.conflicts++
    }
    if (c.read % 1000 === 0) progress?.(c)
  }
  // verify: every source user is in the target
  let missing = 0
  for await (const u of from.all()) if (await to.get(u.username) === undefined) missing++
  if (missing > 0) throw verifyFailed(`${missing} of ${c.read} users are missing from the target after copying`)
  return c
}

export async function migrateMessages (from: MessageStore, to: MessageStore, progress?: (c: MigrateCounts) => void): Promise<MigrateCounts> {
  const c = zero()
  const now = Date.now()
  for await (const m of from.all()) {
    if (m.expiresAt !== undefined && m.expiresAt <= now) continue // expired: would be deleted anyway
    c.read++
    const { id, ...rest } = m
    const r = await to.put(rest, { id })
    if (r.created) c.copied++
    else if (r.message.id === id && r.message.body === m.body) c.present++
    else c.conflicts++
    if (c.read % 1000 === 0) progress?.(c)
  }
  // verify: every (unexpired) source id is in the target, or its (from, clientId) is (a conflict kept)
  const ids = new Set<string>()
  for await (const m of to.all()) ids.add(m.id)
  let missing = 0
  for await (const m of from.all()) {
    if (m.expiresAt !== undefined && m.expiresAt <= now) continue
    if (!ids.has(m.id)) missing++
  }
  if (missing > c.conflicts) throw verifyFailed(`${missing - c.conflicts} of ${c.read} messages are missing from the target after copying`)
  return c
}

export async function migrate (s: MigrateStores, progress?: (what: 'users' | 'messages', c: MigrateCounts) => void): Promise<MigrateResult> {
  const out: MigrateResult = {}
  if (s.fromUsers && s.toUsers) out.users = await migrateUsers(s.fromUsers, s.toUsers, c => progress?.('users', c))
  if (s.fromMessages && s.toMessages) out.messages = await migrateMessages(s.fromMessages, s.toMessages, c => progress?.('messages', c))
  return out
}
