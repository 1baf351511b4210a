// Runs the UserStore contract against SQLite always and PostgreSQL when reachable,
// each contract test in its own file or schema, dropped at the end.

import t from 'tap'
import { join } from 'node:path'
import { sqliteUserStore } from '../../src/storage/users/sqlite.js'
import { postgresUserStore } from '../../src/storage/users/postgres.js'
import { userStoreContract } from './contract/user-store.js'
import { PG_URL, pgDropSchemas, reachable, tempDir } from './backends.js'

// probe before the first subtest: tap ends the root test once its queue drains
const pgUp = await reachable(PG_URL)
const dir = tempDir(t)
let n = 0
userStoreContract(t, 'sqlite', async () => sqliteUserStore({ path: join(dir, `users-${n++}.db`) }))

t.test('sqlite: data and migrations survive a reopen', async t => {
  const path = join(dir, 'reopen.db')
  const a = sqliteUserStore({ path })
  await a.create({ username: 'erin', passwordHash: 'h', keys: null })
  await a.revokeToken('j', Date.now() + 60_000)
  await a.close()
  const b = sqliteUserStore({ path })
  t.teardown(() => b.close())
  t.equal((await b.get('ERIN'))?.username, 'erin')
  t.equal(await b.isTokenRevoked('j'), true)
  await t.rejects(b.create({ username: 'Erin', passwordHash: 'h', keys: null }), { code: 'MM_ERR_USER_EXISTS' })
})

t.test('sqlite: closed store rejects', async t => {
  const s = sqliteUserStore({ path: join(dir, 'closed.db') })
  await s.close()
  await t.rejects(s.count(), { code: 'MM_ERR_STORE_CLOSED' })
})

if (!pgUp) {
  t.comment(`SKIPPED: postgres contract suite (${PG_URL} not reachable)`)
  t.test('postgres contract suite', { skip: `${PG_URL} not reachable` }, async () => {})
} else {
  const schemas: string[] = []
  t.teardown(() => pgDropSchemas(PG_URL, schemas))
  userStoreContract(t, 'postgres', async () => {
    const schema = `mm_test_${process.pid}_${Date.now()}_${schemas.length}`
    schemas.push(schema)
    return await postgresUserStore({ url: PG_URL, schema })
  })

  t.test('postgres: two stores on one schema migrate once and share users', async t => {
    const schema = `mm_test_${process.pid}_${Date.now()}_shared`
    schemas.push(schema)
    const [a, b] = await Promise.all([postgresUserStore({ url: PG_URL, schema }), postgresUserStore({ url: PG_URL, schema })])
    t.teardown(async () => { await a.close(); await b.close() })
    await a.create({ username: 'frank', passwordHash: 'h', keys: null })
    t.equal((await b.get('Frank'))?.username, 'frank')
    await t.rejects(b.create({ username: 'FRANK', passwordHash: 'h', keys: null }), { code: 'MM_ERR_USER_EXISTS' })
  })

  t.test('postgres: claims from two stores (two pools, as two server processes) never share a one-time key', async t => {
    const schema = `mm_test_${process.pid}_${Date.now()}_claims`
    schemas.push(schema)
    const [a, b] = await Promise.all([postgresUserStore({ url: PG_URL, schema }), postgresUserStore({ url: PG_URL, schema })])
    t.teardown(async () => { await a.close(); await b.close() })
    await a.create({ username: 'gina', passwordHash: 'h', keys: null })
    const ids = Array.from({ length: 40 }, (_, i) => i + 1)
    await a.addPrekeys('gina', { signedPrekey: { id: 1, key: 'k', signature: 's' }, lastResortKem: { id: 0, key: 'lr', signature: 's' }, oneTimeKem: ids.map(id => ({ id, key: `k${id}`, signature: 's' })) })
    const claims = await Promise.all(ids.map((_, i) => (i % 2 === 0 ? a : b).claimPrekeys('gina')))
    t.same(claims.map(c => c!.kemPrekey.id).sort((x, y) => x - y), ids, 'forty claims, forty different keys')
  })
}
