// Case 6: the stores on their own, no network in front. Message stores: put (a room
// send) and list (a 50-message page) per second; user stores: create and get per
// second; the Redis session store: set and get of a hop record. Eight operations
// in flight. External stores are measured when reachable, else reported "skipped".
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { openMessageStore, openSessionStore, openUserStore } from '../../src/storage/index.js'
import { HOP_RECORD_SIZE } from '../../src/onion/circuits/hop-state.js'
import { tmp } from '../lib/procs.js'
import { nowMs } from '../lib/stats.js'

export interface StoreFigure { store: string, writeOp: string, writesPerSec: number | null, readOp: string, readsPerSec: number | null, note?: string }

const IN_FLIGHT = 8
const HASH = 'scrypt$16384$8$1$' + 'A'.repeat(22) + '$' + 'B'.repeat(43)

/** runs op(i) for i < n with IN_FLIGHT in flight; returns ops per second */
async function rate (n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0
  const t = nowMs()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (next < n) await op(next++) }))
  return Math.round(n / ((nowMs() - t) / 1000))
}

const skipped = (store: string, writeOp: string, readOp: string, note: string): StoreFigure => ({ store, writeOp, writesPerSec: null, readOp, readsPerSec: null, note })

async function messageFigure (store: string, open: () => ReturnType<typeof openMessageStore>, n: number): Promise<StoreFigure> {
  const s = await open()
  try {
    const tag = `${process.pid}-${Date.now()}`
    const room = `bench-${tag}`
    const writes = await rate(n, (i) => s.put({ from: 'bench', room, clientId: `c-${tag}-${i}`, body: 'x'.repeat(160), sentAt: Date.now() }))
    const reads = await rate(n, () => s.list({ room, limit: 50 }))
    return { store, writeOp: 'put', writesPerSec: writes, readOp: 'list 50', readsPerSec: reads }
  } finally {
    await s.close()
  }
}

async function userFigure (store: string, open: () => ReturnType<typeof openUserStore>, n: number): Promise<StoreFigure> {
  const s = await open()
  try {
    const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`
    const writes = await rate(n, (i) => s.create({ username: `u${tag}-${i}`, passwordHash: HASH, keys: null }))
    const reads = await rate(n, (i) => s.get(`u${tag}-${i % n}`))
    return { store, writeOp: 'create', writesPerSec: writes, readOp: 'get', readsPerSec: reads }
  } finally {
    await s.close()
  }
}

export async function benchStorage (n: number): Promise<StoreFigure[]> {
  const dir = tmp('mm-bench-store-')
  const out: StoreFigure[] = []
  out.push(await messageFigure('nedb (messages)', () => openMessageStore(`nedb:${join(dir, 'messages.db')}`), n))
  out.push(await userFigure('sqlite (users)', () => openUserStore(`sqlite:${join(dir, 'users.db')}`), n))

  const schema = `bench_${process.pid}_${Date.now()}`
  try {
    out.push(await userFigure('postgres (users)', () => openUserStore('postgres://postgres@127.0.0.1:5432/test', { schema, connectTimeoutMs: 2000 }), n))
    await dropSchema(schema)
  } catch (err) {
    out.push(skipped('postgres (users)', 'create', 'get', `skipped (${firstLine(err)})`))
  }

  try {
    const key = randomBytes(32)
    const s = await openSessionStore('redis://127.0.0.1:6379', { maxEntries: 1_000_000, ttlMs: 60_000, encryptionKey: key, keyPrefix: `mm:bench:${process.pid}:`, connectTimeoutMs: 2000 })
    try {
      const rec = randomBytes(HOP_RECORD_SIZE)
      const writes = await rate(n, (i) => s.set(`c${i}`, rec))
      const reads = await rate(n, (i) => s.get(`c${i}`))
      for (let i = 0; i < n; i++) await s.delete(`c${i}`)
      out.push({ store: 'redis (sessions)', writeOp: 'set', writesPerSec: writes, readOp: 'get', readsPerSec: reads })
    } finally {
      await s.close()
    }
  } catch (err) {
    out.push(skipped('redis (sessions)', 'set', 'get', `skipped (${firstLine(err)})`))
  }

  const mongo = process.env.MARSHMELLO_TEST_MONGO_URL
  if (!mongo) out.push(skipped('mongodb (messages)', 'put', 'list 50', 'skipped (MARSHMELLO_TEST_MONGO_URL not set)'))
  else {
    try {
      out.push(await messageFigure('mongodb (messages)', () => openMessageStore(mongo, { collection: `bench_${process.pid}_${Date.now()}`, connectTimeoutMs: 2000 }), n))
    } catch (err) {
      out.push(skipped('mongodb (messages)', 'put', 'list 50', `skipped (${firstLine(err)})`))
    }
  }
  return out
}

const firstLine = (err: unknown): string => String((err as Error)?.message ?? err).split('\n')[0].slice(0, 100)

async function dropSchema (schema: string): Promise<void> {
  const { default: pg } = await import('pg')
  const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test', connectionTimeoutMillis: 2000 })
  await c.connect()
  try { await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) } finally { await c.end() }
}
