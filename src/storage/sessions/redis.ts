// The shared session store: Redis through ioredis, so several relay processes behind
// one address share circuits. Values are sealed (seal.ts) so Redis never holds key
// material in the clear; each value is a hash (`d` the sealed bytes, `v` its version)
// that expires with PEXPIRE, and a sorted set of ids by insertion time bounds the
// store: one Lua script sets (unconditionally, only if absent, or only at an expected
// version: compare-and-set), stamps a version from one store-wide counter, expires and
// evicts atomically (Redis runs a script alone: no other command interleaves).

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
 * KEYS: value key, index, version counter. ARGV: sealed value, ttl ms, max entries, id,
 * value key prefix, mode ('set', or 'cas' to write only when the current version is
 * ARGV[7]; 0 = absent). Returns the new version when written, 0 when not.
 */
const SET_LUA = NOW_US + `
if ARGV[6] == 'cas' then
  local cur = redis.call('HGET', KEYS[1], 'v') or '0'
  if cur ~= ARGV[7] then return 0 end
end
local version = redis.call('INCR', KEYS[3])
local ttl = tonumber(ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= now then now = tonumber(top[2]) + 1 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', version)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[5] .. old[i]) end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return version
`

/** KEYS: index. ARGV: ttl ms. */
const SIZE_LUA = NOW_US + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]) * 1000)
return redis.call('ZCARD', KEYS[1])
`

interface SessionCommands {
  mmSessionSet (valueKey: string, index: string, counter: string, value: Buffer, ttlMs: number, max: number, id: string, valuePrefix: string, mode: 'set' | 'cas', expected: string): Promise<number>
  mmSessionSize (index: string, ttlMs: number): Promise<number>
}

export async function redisSessionStore (init: RedisSessionStoreInit): Promise<SessionStore> {
  checkSessionInit(init)
  checkSealKey(init.encryptionKey)
  const key = Uint8Array.from(init.encryptionKey)
  const prefix = init.keyPrefix ?? 'mm:sessions:'
  // `r:` (records with versions) since the hash layout; `s:` held plain strings before
  const valuePrefix = `${prefix}r:`
  const index = `${prefix}index`
  const counter = `${prefix}version`
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
  redis.defineCommand('mmSessionSet', { numberOfKeys: 3, lua: SET_LUA })
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

  const write = async (id: string, value: Uint8Array, mode: 'set' | 'cas', expected = 0): Promise<number> => {
    const sealed = seal(key, id, value)
    return Number(await run(async () => await cmd.mmSessionSet(valuePrefix + id, index, counter, sealed, init.ttlMs, init.maxEntries, id, valuePrefix, mode, String(expected))))
  }
  const read = async (id: string) => {
    const [sealed, v] = await run(async () => await redis.hmgetBuffer(valuePrefix + id, 'd', 'v'))
    return sealed === null || v === null ? undefined : { value: unseal(key, id, sealed), version: Number(v.toString()) }
  }

  return {
    kind: 'redis',
    async get (id) {
      return (await read(id))?.value
    },
    async getVersioned (id) {
      return await read(id)
    },
    async set (id, value) {
      await write(id, value, 'set')
    },
    async create (id, value) {
      return await write(id, value, 'cas', 0) !== 0
    },
    async compareAndSet (id, value, expected) {
      if (!Number.isSafeInteger(expected) || expected < 0) return 0
      return await write(id, value, 'cas', expected)
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
