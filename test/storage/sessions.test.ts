// Runs the SessionStore contract against lru always and Redis when reachable, plus
// Redis-specific checks: nothing readable at rest, the key is required.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { lruSessionStore } from '../../src/storage/sessions/lru.js'
import { redisSessionStore } from '../../src/storage/sessions/redis.js'
import { sessionStoreContract } from './contract/session-store.js'
import { REDIS_URL, reachable, redisCleanup } from './backends.js'

// probe before the first subtest: tap ends the root test once its queue drains
const redisUp = await reachable(REDIS_URL)

sessionStoreContract(t, 'lru', async init => lruSessionStore(init))

if (!redisUp) {
  t.comment(`SKIPPED: redis contract suite (${REDIS_URL} not reachable)`)
  t.test('redis contract suite', { skip: `${REDIS_URL} not reachable` }, async () => {})
} else {
  const prefix = `mmtest:${process.pid}:${Date.now()}:`
  let n = 0
  const key = randomBytes(32)
  t.teardown(() => redisCleanup(REDIS_URL, prefix))
  sessionStoreContract(t, 'redis', async init =>
    await redisSessionStore({ url: REDIS_URL, ...init, encryptionKey: key, keyPrefix: `${prefix}${n++}:` }),
  { inserts: 2_000, bound: 1_000 })

  t.test('redis: values are sealed at rest, bound to their id and key', async t => {
    const keyPrefix = `${prefix}sealed:`
    const s = await redisSessionStore({ url: REDIS_URL, maxEntries: 10, ttlMs: 60_000, encryptionKey: key, keyPrefix })
    t.teardown(() => s.close())
    const secret = Buffer.from('circuit-key-material-0123456789abcdef')
    await s.set('c1', secret)
    const { Redis } = await import('ioredis')
    const raw = new Redis(REDIS_URL)
    t.teardown(() => raw.disconnect())
    const stored = await raw.hgetBuffer(`${keyPrefix}r:c1`, 'd')
    t.ok(stored !== null && stored.length >= secret.length + 45, 'a sealed value is stored')
    t.notOk(stored!.includes(secret.subarray(0, 8)), 'no plaintext in Redis')
    // moved to another id: refused
    await raw.hset(`${keyPrefix}r:c2`, 'd', stored!, 'v', '1')
    await t.rejects(s.get('c2'), { code: 'MM_ERR_STORE_INTEGRITY' })
    // another relay key: refused
    const other = await redisSessionStore({ url: REDIS_URL, maxEntries: 10, ttlMs: 60_000, encryptionKey: randomBytes(32), keyPrefix })
    t.teardown(() => other.close())
    await t.rejects(other.get('c1'), { code: 'MM_ERR_STORE_INTEGRITY' })
    t.same(await s.get('c1'), new Uint8Array(secret))
  })

  t.test('redis: the encryption key is required and must be 32 bytes', async t => {
    await t.rejects(redisSessionStore({ url: REDIS_URL, maxEntries: 10, ttlMs: 1_000, encryptionKey: randomBytes(16) }), { code: 'MM_ERR_STORE_CONFIG' })
    await t.rejects(redisSessionStore({ url: REDIS_URL, maxEntries: 10, ttlMs: 1_000, encryptionKey: undefined as unknown as Uint8Array }), { code: 'MM_ERR_STORE_CONFIG' })
  })
}
