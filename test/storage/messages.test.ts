// Runs the MessageStore contract against nedb always and MongoDB when
// MARSHMELLO_TEST_MONGO_URL is set (each test in its own collection, dropped at the end).

import t from 'tap'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { nedbMessageStore } from '../../src/storage/messages/nedb.js'
import { mongoMessageStore } from '../../src/storage/messages/mongo.js'
import { messageStoreContract } from './contract/message-store.js'
import { MONGO_URL, tempDir } from './backends.js'

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

t.test('nedb: the file is compacted periodically', async t => {
  const path = join(dir, 'compact.db')
  const s = await nedbMessageStore({ path, compactIntervalMs: 1_500 })
  t.teardown(() => s.close())
  for (let i = 0; i < 20; i++) await s.put({ from: 'a', room: 'r', clientId: `c${i}`, body: 'b', sentAt: 1, expiresAt: 5 })
  t.equal(await s.deleteExpired(10), 20)
  const lines = () => readFileSync(path, 'utf8').split('\n').filter(l => l !== '' && !l.includes('$$indexCreated')).length
  t.ok(lines() >= 40, 'appends then deletions are both in the file')
  await new Promise(resolve => setTimeout(resolve, 2_000))
  t.equal(lines(), 0, 'compaction rewrote it without the deleted messages')
})

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
    stores.push({ drop: () => mongoDropCollection(mongoUrl, s.collectionName) })
    return s
  })
}

async function mongoDropCollection (url: string, name: string): Promise<void> {
  const { MongoClient } = await import('mongodb')
  const c = new MongoClient(url, { serverSelectionTimeoutMS: 3_000 })
  try { await c.db().collection(name).drop() } catch { /* already gone */ } finally { await c.close() }
}
