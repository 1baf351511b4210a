// Runs the MessageStore contract against nedb always, PostgreSQL when reachable (each
// test in its own schema) and MongoDB when MARSHMELLO_TEST_MONGO_URL is set (each test
// in its own collection); schemas and collections are dropped at the end.

import t from 'tap'
import { join } from 'node:path'
import { readFileSync, statSync } from 'node:fs'
import { waitUntil } from '../helpers/wait.js'
import { nedbMessageStore } from '../../src/storage/messages/nedb.js'
import { mongoMessageStore } from '../../src/storage/messages/mongo.js'
import { postgresMessageStore } from '../../src/storage/messages/postgres.js'
import { openMessageStore } from '../../src/storage/index.js'
import type { MessageStore, StoredMessage } from '../../src/storage/types.js'
import { messageStoreContract } from './contract/message-store.js'
import { MONGO_URL, PG_URL, pgDropSchemas, reachable, tempDir } from './backends.js'

// probe before the first subtest: tap ends the root test once its queue drains
const pgUp = await reachable(PG_URL)

const dir = tempDir(t)
let n = 0
messageStoreContract(t, 'nedb', async () => await nedbMessageStore({ path: join(dir, `messages-${n++}.db`) }))

t.test('nedb: messages and idempotency survive a reopen', async t => {
  const path = join(dir, 'reopen.db')
  const a = await nedbMessageStore({ path })
  const first = (await a.put({ from: 'alice', room: 'r', clientId: 'k', body: 'b', sentAt: 1 })).message
  await a.close()
  const b = await nedbMessageStore({ path })
  t.teardown(() => b.close())
  t.same(await b.list({ room: 'r', limit: 5 }), [first])
  const again = await b.put({ from: 'alice', room: 'r', clientId: 'k', body: 'b', sentAt: 1 })
  t.same(again, { message: first, created: false })
})

t.test('nedb: a cursor read (taken from the _id index) filters rooms, DMs and expiry exactly', async t => {
  let clock = 1_000
  const s = await nedbMessageStore({ path: join(dir, 'cursor.db'), now: () => clock })
  t.teardown(() => s.close())
  const put = async (m: { room?: string, to?: string, expiresAt?: number }, i: number) =>
    (await s.put({ from: 'alice', clientId: `c${i}`, body: `b${i}`, sentAt: 1, ...m })).message
  const kinds = [{ room: 'a' }, { room: 'b' }, { to: 'bob' }, { room: 'a', expiresAt: 1_500 }]
  const all = []
  for (let i = 0; i < 40; i++) { clock++; all.push(await put(kinds[i % 4], i)) }
  clock = 2_000 // the expiring ones are past their time
  const cursor = all[9].id
  const inRoomA = all.filter(m => m.room === 'a' && m.expiresAt === undefined && m.id > cursor)
  t.same(await s.list({ room: 'a', after: cursor, limit: 100 }), inRoomA, 'room a after the cursor, in order, without expired ones')
  t.same(await s.list({ room: 'a', after: cursor, limit: 3 }), inRoomA.slice(0, 3), 'limit')
  t.same(await s.list({ dmUser: 'bob', after: cursor, limit: 100 }), all.filter(m => m.to === 'bob' && m.id > cursor), "bob's DMs after the cursor")
  t.same(await s.list({ room: 'a', after: all[39].id, limit: 10 }), [], 'nothing after the newest')
})

t.test('nedb: a repeat in the same group commit as new messages fails alone', async t => {
  const s = await nedbMessageStore({ path: join(dir, 'batch-repeat.db') })
  t.teardown(() => s.close())
  const first = (await s.put({ from: 'alice', room: 'r', clientId: 'k0', body: 'first', sentAt: 1 })).message
  // same tick: one insert batch holding a repeat of k0 and two new messages
  const [again, a, b] = await Promise.all(['k0', 'k1', 'k2'].map(clientId => s.put({ from: 'alice', room: 'r', clientId, body: clientId, sentAt: 2 })))
  t.same(again, { message: first, created: false }, 'the repeat returns the stored copy')
  t.ok(a.created && b.created, 'the new messages of the batch are stored')
  t.equal(await s.count(), 3)
})

t.test('nedb: the file is compacted periodically', async t => {
  const path = join(dir, 'compact.db')
  const s = await nedbMessageStore({ path, compactIntervalMs: 1_500 })
  t.teardown(() => s.close())
  for (let i = 0; i < 20; i++) await s.put({ from: 'a', room: 'r', clientId: `c${i}`, body: 'b', sentAt: 1, expiresAt: 5 })
  t.equal(await s.deleteExpired(10), 20)
  const lines = () => readFileSync(path, 'utf8').split('\n').filter(l => l !== '' && !l.includes('$$indexCreated')).length
  t.ok(lines() >= 40, 'appends then deletions are both in the file')
  t.ok(await waitUntil(() => lines() === 0, { timeoutMs: 6_000, everyMs: 100 }), 'compaction rewrote it without the deleted messages')
})

t.test('nedb: puts after a compaction go to the new file (the append handle is reopened)', async t => {
  const path = join(dir, 'compact-then-put.db')
  const s = await nedbMessageStore({ path, compactIntervalMs: 500 })
  const before = (await s.put({ from: 'a', room: 'r', clientId: 'before', body: 'one', sentAt: 1 })).message
  // at least one compaction: a new file renamed over the old one (another inode)
  const inode = statSync(path).ino
  t.ok(await waitUntil(() => statSync(path).ino !== inode, { timeoutMs: 5_000, everyMs: 50 }), 'compacted')
  const after = (await s.put({ from: 'a', room: 'r', clientId: 'after', body: 'two', sentAt: 2 })).message
  const lines = readFileSync(path, 'utf8').split('\n').filter(l => l.includes('"clientId"'))
  t.equal(lines.length, 2, 'the file on disk holds both messages, one line each')
  t.ok(lines.some(l => l.includes('"after"')), 'the put after compaction was appended to the live file, not the replaced one')
  await s.close()
  const again = await nedbMessageStore({ path })
  t.teardown(() => again.close())
  t.same(await again.list({ room: 'r', limit: 5 }), [before, after], 'both survive a reopen')
})

/** how many connections LISTEN on the schema's channel now (PostgreSQL's own view) */
async function listeningOn (schema: string): Promise<number> {
  const { default: pg } = await import('pg')
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  try {
    return (await c.query('SELECT pid FROM pg_stat_activity WHERE query = $1', [`LISTEN "${`mm_messages_${schema}`.slice(0, 63)}"`])).rowCount ?? 0
  } finally { await c.end() }
}

function nextMessage (s: MessageStore, match: (m: StoredMessage) => boolean, ms = 5_000): Promise<StoredMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no onMessage within ${ms} ms`)) }, ms)
    const off = s.onMessage(m => { if (match(m)) { clearTimeout(timer); off(); resolve(m) } })
  })
}

if (!pgUp) {
  t.comment(`SKIPPED: postgres message contract suite (${PG_URL} not reachable)`)
  t.test('postgres message contract suite', { skip: `${PG_URL} not reachable` }, async () => {})
} else {
  const schemas: string[] = []
  const newSchema = () => { const s = `mm_test_msg_${process.pid}_${Date.now()}_${schemas.length}`; schemas.push(s); return s }
  t.teardown(() => pgDropSchemas(PG_URL, schemas))
  messageStoreContract(t, 'postgres', async () => await postgresMessageStore({ url: PG_URL, schema: newSchema() }))

  t.test('postgres: two stores on one schema (two processes) share messages and wake each other', async t => {
    const schema = newSchema()
    const [a, b] = await Promise.all([postgresMessageStore({ url: PG_URL, schema }), postgresMessageStore({ url: PG_URL, schema })])
    t.teardown(async () => { await a.close(); await b.close() })
    const heardOnA: string[] = []
    a.onMessage(m => heardOnA.push(m.clientId))
    const onB = nextMessage(b, m => m.clientId === 'x1')
    t.ok(await waitUntil(async () => await listeningOn(schema) === 2), 'both stores\' LISTEN connections are open')
    const started = Date.now()
    const { message } = await a.put({ from: 'alice', room: 'lobby', clientId: 'x1', body: 'hi', sentAt: 1 })
    t.same(await onB, message, 'the other store hears it through LISTEN/NOTIFY and fetches the row')
    t.ok(Date.now() - started < 2_000, 'within 2 s')
    t.same(await b.list({ room: 'lobby', limit: 5 }), [message])
    t.same((await b.put({ from: 'alice', room: 'lobby', clientId: 'x1', body: 'hi', sentAt: 1 })), { message, created: false }, 'idempotent across stores')
    await new Promise(resolve => setTimeout(resolve, 300)) // a window for an echo that must not come
    t.same(heardOnA, ['x1'], 'the sending store emits its own put once (its NOTIFY echo is skipped)')
  })

  t.test('postgres: the LISTEN connection comes back after the server drops it', async t => {
    const schema = newSchema()
    const [a, b] = await Promise.all([postgresMessageStore({ url: PG_URL, schema }), postgresMessageStore({ url: PG_URL, schema, listenRetryMs: 100 })])
    t.teardown(async () => { await a.close(); await b.close() })
    b.onMessage(() => {}) // keeps b listening throughout (the LISTEN client closes when nobody listens)
    const first = nextMessage(b, m => m.clientId === 'before')
    t.ok(await waitUntil(async () => await listeningOn(schema) === 1), 'b\'s LISTEN connection is open')
    await a.put({ from: 'alice', room: 'r', clientId: 'before', body: 'b', sentAt: 1 })
    await first
    const { default: pg } = await import('pg')
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1`, [`LISTEN %mm_messages_${schema}%`])
    await admin.end()
    t.equal(killed.rowCount, 1, 'the listening connection was terminated')
    const deadline = Date.now() + 5_000
    let heard: StoredMessage | undefined
    const after = nextMessage(b, m => m.clientId.startsWith('after'), 6_000).then(m => { heard = m })
    for (let i = 0; heard === undefined && Date.now() < deadline; i++) {
      await a.put({ from: 'alice', room: 'r', clientId: `after${i}`, body: 'b', sentAt: 1 })
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    await after
    t.ok(heard, 'a message after the reconnection is heard')
  })

  t.test('postgres: openMessageStore takes postgres:// with ?schema=', async t => {
    const schema = newSchema()
    const s = await openMessageStore(`${PG_URL}?schema=${schema}`)
    t.teardown(() => s.close())
    t.equal(s.kind, 'postgres')
    t.equal((s as { schema?: string }).schema, schema)
    await t.rejects(openMessageStore(`${PG_URL}?schema=Bad-Name`), { code: 'MM_ERR_STORE_CONFIG' })
    await t.rejects(openMessageStore('postgres://127.0.0.1:1/none', { connectTimeoutMs: 500 }), { code: 'MM_ERR_STORE_UNAVAILABLE' })
  })
}

const mongoUrl = MONGO_URL
if (mongoUrl === undefined) {
  t.comment('SKIPPED: mongodb contract suite (MARSHMELLO_TEST_MONGO_URL not set)')
  t.test('mongodb contract suite', { skip: 'MARSHMELLO_TEST_MONGO_URL not set' }, async () => {})
} else {
  const run = `mm_test_${process.pid}_${Date.now()}`
  const stores: Array<{ drop (): Promise<void> }> = []
  t.teardown(async () => { for (const s of stores) await s.drop() })
  let i = 0
  messageStoreContract(t, 'mongodb', async () => {
    const s = await mongoMessageStore({ url: mongoUrl, collection: `${run}_${i++}` })
    stores.push({ drop: () => mongoDropCollection(mongoUrl, s.databaseName, s.collectionName) })
    return s
  })
}

async function mongoDropCollection (url: string, database: string, name: string): Promise<void> {
  const { MongoClient } = await import('mongodb')
  const c = new MongoClient(url, { serverSelectionTimeoutMS: 3_000 })
  try { await c.db(database).collection(name).drop() } catch { /* already gone */ } finally { await c.close() }
}
