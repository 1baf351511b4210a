// `marshmello migrate` from the embedded stores (SQLite users, nedb messages) to
// PostgreSQL (users and messages, one schema per run, dropped at the end): every user
// keeps its password hash, keys and creation time; every message its id, client id,
// sentAt and expiresAt; a second run copies nothing; the counts are printed.
import t from 'tap'
import { join } from 'node:path'
import { sqliteUserStore } from '../../../src/storage/users/sqlite.js'
import { nedbMessageStore } from '../../../src/storage/messages/nedb.js'
import { openMessageStore, openUserStore } from '../../../src/storage/index.js'
import type { StoredMessage, UserRecord } from '../../../src/storage/types.js'
import { run, tmp } from '../../helpers/net.js'
import { PG_URL, pgDropSchemas, reachable } from '../../storage/backends.js'

const pgUp = await reachable(PG_URL)

if (!pgUp) {
  t.comment(`SKIPPED: migrate to PostgreSQL (${PG_URL} not reachable)`)
  t.test('migrate to PostgreSQL', { skip: `${PG_URL} not reachable` }, async () => {})
} else {
  t.test('migrate sqlite + nedb to PostgreSQL, twice', async t => {
    const dir = tmp('mm-migrate-')
    const schema = `mm_test_migrate_${process.pid}_${Date.now()}`
    t.teardown(() => pgDropSchemas(PG_URL, [schema]))
    const target = `${PG_URL}?schema=${schema}`

    const users: UserRecord[] = []
    const u = sqliteUserStore({ path: join(dir, 'users.db') })
    for (let i = 0; i < 30; i++) {
      users.push(await u.create({ username: `user${i}`, passwordHash: `scrypt$16384$8$1$salt${i}$hash${i}`, keys: i % 2 ? { enc: `enc${i}`, sign: `sign${i}` } : null, createdAt: 1_700_000_000_000 + i }))
    }
    await u.close()
    const messages: StoredMessage[] = []
    const m = await nedbMessageStore({ path: join(dir, 'messages.db') })
    for (let i = 0; i < 700; i++) {
      const base = { from: `user${i % 30}`, clientId: `c${i}`, body: `body ${i}`, sentAt: 1_700_000_000_000 + i }
      const msg = i % 3 === 0 ? { ...base, to: `user${(i + 1) % 30}` } : { ...base, room: 'lobby', ...(i % 7 === 0 ? { expiresAt: Date.now() + 3_600_000 } : {}) }
      messages.push((await m.put(msg)).message)
    }
    await m.close()

    const args = ['migrate', '--from-users', `sqlite:${join(dir, 'users.db')}`, '--to-users', target, '--from-messages', `nedb:${join(dir, 'messages.db')}`, '--to-messages', target]
    const first = run(args)
    t.equal(await first.exited, 0, `first run succeeds: ${first.stderr()}`)
    t.match(first.stdout(), /users: 30 read, 30 copied, 0 already present, 0 conflicts/)
    t.match(first.stdout(), /messages: 700 read, 700 copied, 0 already present, 0 conflicts/)
    t.match(first.stdout(), /verified/)
    const second = run(args)
    t.equal(await second.exited, 0, 'second run succeeds')
    t.match(second.stdout(), /users: 30 read, 0 copied, 30 already present/)
    t.match(second.stdout(), /messages: 700 read, 0 copied, 700 already present/)
    t.match(second.stdout(), /target now holds 700 messages/, 'stored once')

    const pu = await openUserStore(target)
    const pm = await openMessageStore(target)
    t.teardown(async () => { await pu.close(); await pm.close() })
    t.equal(await pu.count(), 30)
    for (const x of users) t.same(await pu.get(x.username), x, `${x.username}: hash, keys and createdAt kept`)
    const copied: StoredMessage[] = []
    for await (const x of pm.all()) copied.push(x)
    t.same(copied, messages, 'every message with its id, clientId, sentAt and expiresAt, in order')

    const bad = run(['migrate', '--from-users', `sqlite:${join(dir, 'users.db')}`])
    t.not(await bad.exited, 0, 'a half-given pair is refused')
    t.match(bad.stderr(), /--to-users/)
  })
}
