// Opening stores by URL: the embedded defaults, unknown schemes, unreachable stores
// failing at open without leaking a password, and a store going down while in use
// turning into MM_ERR_STORE_UNAVAILABLE (503) instead of a crash or a hang.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createStores, defaultStoreUrls, openMessageStore, openSessionStore, openUserStore, redactUrl } from '../../src/storage/index.js'
import { PG_URL, REDIS_URL, cuttableProxy, pgDropSchemas, reachable, redisCleanup, tempDir } from './backends.js'

// probe before the first subtest: tap ends the root test once its queue drains
const pgUp = await reachable(PG_URL)
const redisUp = await reachable(REDIS_URL)
const session = { maxEntries: 10, ttlMs: 10_000 }

t.test('redactUrl hides passwords only', async t => {
  t.equal(redactUrl('postgres://app:hunter2@127.0.0.1:5432/test'), 'postgres://app:***@127.0.0.1:5432/test')
  t.equal(redactUrl('redis://:hunter2@h:6379/0'), 'redis://:***@h:6379/0')
  t.equal(redactUrl('mongodb://u:p%40ss@a:1,b:2/db?replicaSet=rs'), 'mongodb://u:***@a:1,b:2/db?replicaSet=rs')
  t.equal(redactUrl('postgres://u@h/db?password=hunter2&sslmode=require'), 'postgres://u@h/db?password=***&sslmode=require')
  t.equal(redactUrl('postgres://u@h:5432/db'), 'postgres://u@h:5432/db')
  t.equal(redactUrl('sqlite:/var/lib/mm/users.db'), 'sqlite:/var/lib/mm/users.db')
})

t.test('defaultStoreUrls puts embedded stores in the data dir', async t => {
  t.same(defaultStoreUrls('/var/lib/mm'), { users: 'sqlite:/var/lib/mm/users.db', messages: 'nedb:/var/lib/mm/messages.db', sessions: 'memory' })
})

t.test('createStores opens the embedded defaults', async t => {
  const dir = tempDir(t)
  const server = await createStores({ open: ['users', 'messages'], dataDir: dir })
  t.equal(server.users.kind, 'sqlite')
  t.equal(server.messages.kind, 'nedb')
  await server.users.create({ username: 'alice', passwordHash: 'h', keys: null })
  await server.close()
  const relay = await createStores({ open: ['sessions'], dataDir: dir, session })
  t.equal(relay.sessions.kind, 'memory')
  await relay.close()
  await t.rejects(createStores({ open: ['sessions'], dataDir: dir }), { code: 'MM_ERR_STORE_CONFIG' })
  await t.rejects(createStores({ open: ['users'] }), { code: 'MM_ERR_STORE_CONFIG' })
  const again = await openUserStore(defaultStoreUrls(dir).users)
  t.equal((await again.get('alice'))?.username, 'alice', 'the file is where defaultStoreUrls says')
  await again.close()
})

t.test('unknown schemes fail with MM_ERR_STORE_URL listing the accepted forms', async t => {
  await t.rejects(openUserStore('mysql://u:hunter2@h/db'), { code: 'MM_ERR_STORE_URL', message: /sqlite:PATH.*postgres:\/\// })
  await t.rejects(openMessageStore('sqlite:/tmp/x'), { code: 'MM_ERR_STORE_URL', message: /nedb:PATH.*mongodb:\/\// })
  await t.rejects(openSessionStore('memcached://h', session), { code: 'MM_ERR_STORE_URL', message: /memory.*redis:\/\// })
  await t.rejects(openUserStore('sqlite:'), { code: 'MM_ERR_STORE_URL' })
  const err = await openUserStore('mysql://u:hunter2@h/db').catch(e => e)
  t.notMatch(err.message, /hunter2/)
})

t.test('unreachable stores fail at open, naming the store without its password', async t => {
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['users store postgres://u:***@127.0.0.1:1/x', () => openUserStore('postgres://u:hunter2@127.0.0.1:1/x', { connectTimeoutMs: 2_000 })],
    ['sessions store redis://:***@127.0.0.1:1', () => openSessionStore('redis://:hunter2@127.0.0.1:1', { ...session, encryptionKey: randomBytes(32), connectTimeoutMs: 2_000 })],
    ['messages store mongodb://u:***@127.0.0.1:1/x', () => openMessageStore('mongodb://u:hunter2@127.0.0.1:1/x', { connectTimeoutMs: 1_000 })],
    ['users store sqlite:/dev/null/users.db', () => openUserStore('sqlite:/dev/null/users.db')],
    ['messages store nedb:/dev/null/messages.db', () => openMessageStore('nedb:/dev/null/messages.db')]
  ]
  for (const [prefix, open] of cases) {
    const err = await open().then(() => undefined, e => e)
    t.match(err, { code: 'MM_ERR_STORE_UNAVAILABLE', kind: 'unavailable', statusCode: 503 }, prefix)
    t.ok(err?.message.startsWith(prefix), `message names the store: ${err?.message}`)
    t.notMatch(err?.message, /hunter2|\n/, 'one line, no password')
  }
})

t.test('redis sessions need the relay key', async t => {
  await t.rejects(openSessionStore('redis://127.0.0.1:1', session), { code: 'MM_ERR_STORE_CONFIG' })
})

t.test('a postgres store that goes down answers 503 without hanging', { skip: pgUp ? false : `${PG_URL} not reachable` }, async t => {
  const schema = `mm_test_${process.pid}_${Date.now()}_outage`
  t.teardown(() => pgDropSchemas(PG_URL, [schema]))
  const proxy = await cuttableProxy(PG_URL)
  const url = PG_URL.replace(/:\d+\//, `:${proxy.port}/`)
  const s = await openUserStore(url, { schema, connectTimeoutMs: 1_000 })
  t.teardown(() => s.close())
  await s.create({ username: 'alice', passwordHash: 'h', keys: null })
  await proxy.cut()
  const started = Date.now()
  await t.rejects(s.get('alice'), { code: 'MM_ERR_STORE_UNAVAILABLE', statusCode: 503 })
  await t.rejects(s.get('alice'), { code: 'MM_ERR_STORE_UNAVAILABLE' })
  t.ok(Date.now() - started < 5_000, 'fails fast')
})

t.test('a redis store that goes down answers 503 without hanging', { skip: redisUp ? false : `${REDIS_URL} not reachable` }, async t => {
  const keyPrefix = `mmtest:${process.pid}:${Date.now()}:outage:`
  t.teardown(() => redisCleanup(REDIS_URL, keyPrefix))
  const proxy = await cuttableProxy(REDIS_URL)
  const s = await openSessionStore(`redis://127.0.0.1:${proxy.port}`, { ...session, encryptionKey: randomBytes(32), keyPrefix, connectTimeoutMs: 1_000 })
  t.teardown(() => s.close())
  await s.set('c', Uint8Array.of(1))
  await proxy.cut()
  const started = Date.now()
  await t.rejects(s.get('c'), { code: 'MM_ERR_STORE_UNAVAILABLE', statusCode: 503 })
  await t.rejects(s.set('c', Uint8Array.of(2)), { code: 'MM_ERR_STORE_UNAVAILABLE' })
  t.ok(Date.now() - started < 5_000, 'fails fast')
})

if (!pgUp) t.comment(`SKIPPED: postgres outage test (${PG_URL} not reachable)`)
if (!redisUp) t.comment(`SKIPPED: redis outage test (${REDIS_URL} not reachable)`)
