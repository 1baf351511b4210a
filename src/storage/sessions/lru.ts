// The embedded session store: an in-process LRU (lru-cache) bounded by `maxEntries`
// and expiring after `ttlMs` since the last set. Expired entries are purged by an
// unref'd timer and before every size(), so size() counts only live entries.
// Nothing is shared between processes and nothing survives a restart: by design.

import { LRUCache } from 'lru-cache'
import type { SessionStore, SessionStoreInit } from '../types.js'
import { storeClosed, storeConfigError } from '../errors.js'

/** Longest pause between two sweeps of expired entries. */
const MAX_SWEEP_MS = 30_000

export function checkSessionInit (init: SessionStoreInit): void {
  if (!Number.isInteger(init.maxEntries) || init.maxEntries < 1) {
    throw storeConfigError(`expected maxEntries to be a positive integer, got ${init.maxEntries}`)
  }
  if (!Number.isFinite(init.ttlMs) || init.ttlMs < 1) {
    throw storeConfigError(`expected ttlMs to be a positive number of ms, got ${init.ttlMs}`)
  }
}

export function lruSessionStore (init: SessionStoreInit): SessionStore {
  checkSessionInit(init)
  const cache = new LRUCache<string, Uint8Array>({
    max: init.maxEntries,
    ttl: init.ttlMs,
    updateAgeOnGet: false,
    allowStale: false,
    // the stored copy is private: wipe key material once evicted, replaced or deleted
    dispose: (v) => { v.fill(0) }
  })
  const sweep = setInterval(() => { cache.purgeStale() }, Math.min(init.ttlMs, MAX_SWEEP_MS))
  sweep.unref()
  let closed = false
  const open = () => { if (closed) throw storeClosed('sessions') }

  return {
    kind: 'memory',
    async get (id) {
      open()
      const v = cache.get(id)
      return v === undefined ? undefined : Uint8Array.from(v)
    },
    async set (id, value) {
      open()
      // a copy: the caller may reuse or zero its buffer
      cache.set(id, Uint8Array.from(value))
    },
    async delete (id) {
      open()
      cache.delete(id)
    },
    async size () {
      open()
      cache.purgeStale()
      return cache.size
    },
    async close () {
      if (closed) return
      closed = true
      clearInterval(sweep)
      cache.clear()
    }
  }
}
