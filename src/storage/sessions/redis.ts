// The shared session store: Redis through ioredis, so several relay processes behind
// one address share circuits. Values are sealed (seal.ts) so Redis never holds key
// material in the clear; each value key expires with PX, and a sorted set of ids by
// insertion time bounds the store: one Lua script sets (or creates only if absent),
// expires and evicts atomically.

import { Redis } from 'ioredis'
import type { SessionStore, SessionStoreInit } from '../types.js'
import { isMarshmelloError } from '../../errors.js'
import { storeClosed, storeUnavailable } from '../errors.js'
import { checkSessionInit } from './lru.js'
import { checkSealKey, open as unseal, seal } from './seal.js'

export interface RedisSessionStoreInit extends SessionStoreInit {
  url: string
  /** the relay's own 32-byte key; never sent to Redis */
  encryptionKey: Uint8Array
  /** prefix of every key this store touches; default `mm:sessions:` */
  keyPrefix?: string
  /** give up connecting (and on any single command) after this long; default 5000 ms */
  connectTimeoutMs?: number
}

// Scores are Redis server microseconds, made strictly increasing so ZPOPMIN never
// picks the entry just written when two writes share a microsecond.
const NOW_US = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
`

/**
 * KEYS: value key, index. ARGV: sealed value, ttl ms, max entries, id, value key prefix,
 * '1' to write only when the value key does not exist. Returns 1 when written, 0 when not.
 */
const SET_LUA = NOW_US + `
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= now then now = tonumber(top[2]) + 1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[5] .. old[i]) end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
`

/** KEYS: index. ARGV: ttl ms. */
const SIZE_LUA = NOW_US + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]) * 1000)
return redis.call('ZCARD', KEYS[1])
`

interface SessionCommands {
  mmSessionSet (valueKey: string, index: string, value: Buffer, ttlMs: number, max: number, id: string, valuePrefix: string, onlyIfAbsent: '0' | '1'): Promise<number>
  mmSessionSize (index: string, ttlMs: number): Promise<number>
}

export async function redisSessionStore (init: RedisSessionStoreInit): Promise<SessionStore> {
  checkSessionInit(init)
  checkSealKey(init.encryptionKey)
  const key = Uint8Array.from(init.encryptionKey)
  const prefix = init.keyPrefix ?? 'mm:sessions:'
  const valuePrefix = `${prefix}s:`
  const index = `${prefix}index`
  const timeout = init.connectTimeoutMs ?? 5_000

  const redis = new Redis(init.url, {
    lazyConnect: true,
    connectTimeout: timeout,
    commandTimeout: timeout,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 2_000)
  })
  // without a listener ioredis prints every reconnection error; requests report their own
  let socketError: unknown
  redis.on('error', (err) => { socketError = err })
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    redis.disconnect()
    // connect() only says "Connection is closed."; the socket error says why
    throw storeUnavailable('sessions', init.url, socketError ?? err)
  }
  // from now on a request while Redis is down fails at once instead of queueing
  redis.options.enableOfflineQueue = false
  redis.defineCommand('mmSessionSet', { numberOfKeys: 2, lua: SET_LUA })
  redis.defineCommand('mmSessionSize', { numberOfKeys: 1, lua: SIZE_LUA })
  const cmd = redis as unknown as SessionCommands

  let closed = false
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) throw storeClosed('sessions')
    try {
      return await fn()
    } catch (err) {
      if (isMarshmelloError(err)) throw err
      throw storeUnavailable('sessions', init.url, err, 'is unavailable')
    }
  }

  return {
    kind: 'redis',
    async get (id) {
      const sealed = await run(async () => await redis.getBuffer(valuePrefix + id))
      return sealed === null ? undefined : unseal(key, id, sealed)
    },
    async set (id, value) {
      const sealed = seal(key, id, value)
      await run(async () => await cmd.mmSessionSet(valuePrefix + id, index, sealed, init.ttlMs, init.maxEntries, id, valuePrefix, '0'))
    },
    async create (id, value) {
      const sealed = seal(key, id, value)
      return await run(async () => await cmd.mmSessionSet(valuePrefix + id, index, sealed, init.ttlMs, init.maxEntries, id, valuePrefix, '1')) === 1
    },
    async delete (id) {
      await run(async () => await redis.multi().del(valuePrefix + id).zrem(index, id).exec())
    },
    async size () {
      return Number(await run(async () => await cmd.mmSessionSize(index, init.ttlMs)))
    },
    async close () {
      if (closed) return
      closed = true
      key.fill(0)
      await redis.quit().catch(() => { redis.disconnect() })
    }
  }
}
