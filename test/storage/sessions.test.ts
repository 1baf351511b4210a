// Runs the SessionStore contract against lru always and Redis when reachable, plus
// Redis-specific checks: nothing readable at rest, the key is required.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { lruSessionStore } from '../../src/storage/sessions/lru.js'
import { sessionStoreContract } from './contract/session-store.js'
import { REDIS_URL, reachable, redisCleanup } from './backends.js'

sessionStoreContract(t, 'lru', async init => lruSessionStore(init))

const redisUp = await reachable(REDIS_URL)
if (!redisUp) {
  t.comment(`SKIPPED: redis contract suite (${REDIS_URL} not reachable)`)
  t.test('redis contract suite', { skip: `${REDIS_URL} not reachable` }, async () => {})
} else {
  const { redisSessionStore } = await import('../../src/storage/sessions/redis.js')
  const prefix = `mmtest:${process.pid}:${Date.now()}:`
  let n = 0
  const key = randomBytes(32)
  t.teardown(() => redisCleanup(REDIS_URL, prefix))
  sessionStoreContract(t, 'redis', async init =>
    await redisSessionStore({ url: REDIS_URL, ...init, encryptionKey: key, keyPrefix: `${prefix}${n++}:` }),
  { inserts: 2_000, bound: 1_000 })
  // further Redis-only tests live in redis-sessions.test.ts
}
