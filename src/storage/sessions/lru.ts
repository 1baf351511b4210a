// The embedded session store: an in-process LRU (lru-cache) bounded by `maxEntries`
// and expiring after `ttlMs` since the last set. Expired entries are purged by an
// unref'd timer and before every size(), so size() counts only live entries.
// Nothing is shared between processes and nothing survives a restart: by design.
//
// Values live in slabs, not in one Uint8Array each: a small typed array costs about
// 500 bytes of RSS (JSArrayBuffer, BackingStore, malloc) on top of its bytes, twice
// what a relay's 245-byte hop record needs. Each size class keeps fixed-size slots
// in a few large chunks; lru-cache maps an id to a number (class and slot), so it
// holds no object per entry. A slot is wiped when its entry goes, before it is reused.

import { LRUCache } from 'lru-cache'
import type { SessionStore, SessionStoreInit } from '../types.js'
import { storeClosed, storeConfigError } from '../errors.js'

/** Longest pause between two sweeps of expired entries. */
const MAX_SWEEP_MS = 30_000

/** Slot sizes: a back-pointer record (a circuit key's bytes) fits 64, a hop record (245 bytes) 256. */
const SLOT_SIZES = [64, 256]

/** Slots per chunk (a power of two): 1 MiB chunks for the 256-byte class. */
const CHUNK_BITS = 12
const CHUNK_SLOTS = 1 << CHUNK_BITS
const CHUNK_MASK = CHUNK_SLOTS - 1

/**
 * What lru-cache holds per id: a slab handle (slot × classes + class), or, for a value
 * longer than the largest slot, a private copy (rare for a relay: correct, not compact).
 */
type Stored = number | Uint8Array

interface Chunk {
  bytes: Uint8Array
  /** used length of each slot; the bytes past it are zero */
  lengths: Uint16Array
}

/**
 * Fixed-size slots of one size class. Chunks are allocated on demand, never beyond
 * `maxSlots` slots in all. Invariant: a free slot is all zero, and a used slot is
 * zero past its length, so no key material outlives its entry.
 */
class SlabClass {
  private readonly chunks: Chunk[] = []
  /** stack of free slot numbers; only the first `freeCount` are meaningful */
  private free = new Int32Array(0)
  private freeCount = 0
  private capacity = 0

  constructor (readonly slotSize: number, private readonly maxSlots: number) {}

  get slots (): number { return this.capacity }
  get inUse (): number { return this.capacity - this.freeCount }

  /** a slot holding a copy of `value` (at most slotSize bytes) */
  take (value: Uint8Array): number {
    if (this.freeCount === 0) this.grow()
    const slot = this.free[--this.freeCount]
    this.write(slot, value)
    return slot
  }

  /** replaces a used slot's bytes with `value`, wiping what the old value left past the new length */
  write (slot: number, value: Uint8Array): void {
    const { bytes, lengths } = this.chunks[slot >>> CHUNK_BITS]
    const i = slot & CHUNK_MASK
    const at = i * this.slotSize
    bytes.set(value, at)
    if (lengths[i] > value.length) bytes.fill(0, at + value.length, at + lengths[i])
    lengths[i] = value.length
  }

  /** a fresh copy of the slot's value */
  read (slot: number): Uint8Array {
    const { bytes, lengths } = this.chunks[slot >>> CHUNK_BITS]
    const i = slot & CHUNK_MASK
    const at = i * this.slotSize
    return bytes.slice(at, at + lengths[i])
  }

  /** wipes the slot and returns it to the free list */
  release (slot: number): void {
    const { bytes, lengths } = this.chunks[slot >>> CHUNK_BITS]
    const i = slot & CHUNK_MASK
    const at = i * this.slotSize
    bytes.fill(0, at, at + lengths[i])
    lengths[i] = 0
    this.free[this.freeCount++] = slot
  }

  /** the raw chunks (tests check wiping on them) */
  raw (): Uint8Array[] { return this.chunks.map(c => c.bytes) }

  /** one more chunk, its slots pushed free (lowest on top) */
  private grow (): void {
    const n = Math.min(CHUNK_SLOTS, this.maxSlots - this.capacity)
    // unreachable while every slot belongs to a cache entry and the cache is bounded
    if (n <= 0) throw new Error(`session slab of ${this.slotSize}-byte slots is full (${this.capacity})`)
    this.chunks.push({ bytes: new Uint8Array(n * this.slotSize), lengths: new Uint16Array(n) })
    // grow() runs only when no slot is free: the old stack holds nothing to keep
    this.free = new Int32Array(this.capacity + n)
    for (let s = this.capacity + n - 1; s >= this.capacity; s--) this.free[this.freeCount++] = s
    this.capacity += n
  }
}

/** The size classes of one store, addressed by handles. */
class Slabs {
  readonly classes: SlabClass[]

  constructor (maxEntries: number) {
    this.classes = SLOT_SIZES.map(size => new SlabClass(size, maxEntries))
  }

  /** a handle to a copy of `value` */
  store (value: Uint8Array): Stored {
    const c = this.classFor(value.length)
    return c < 0 ? Uint8Array.from(value) : this.classes[c].take(value) * SLOT_SIZES.length + c
  }

  /** writes `value` over `h` when it fits the same class; false when it needs another handle */
  rewrite (h: Stored, value: Uint8Array): boolean {
    if (typeof h !== 'number' || this.classFor(value.length) !== h % SLOT_SIZES.length) return false
    this.slabOf(h).write(this.slotOf(h), value)
    return true
  }

  read (h: Stored): Uint8Array {
    return typeof h === 'number' ? this.slabOf(h).read(this.slotOf(h)) : Uint8Array.from(h)
  }

  /** wipes the value; a slot goes back to its free list */
  release (h: Stored): void {
    if (typeof h === 'number') this.slabOf(h).release(this.slotOf(h))
    else h.fill(0)
  }

  private classFor (length: number): number {
    return SLOT_SIZES.findIndex(size => length <= size)
  }

  private slabOf (h: number): SlabClass { return this.classes[h % SLOT_SIZES.length] }
  private slotOf (h: number): number { return Math.floor(h / SLOT_SIZES.length) }
}

export interface SlabStats {
  slotSize: number
  /** slots allocated (never more than maxEntries) */
  slots: number
  inUse: number
  /** the slab's chunks themselves, to check that freed bytes are zero */
  raw: Uint8Array[]
}

const slabsOf = new WeakMap<SessionStore, Slabs>()

/** Tests only: per size class, the slots of an lru store and its raw bytes. */
export function slabStats (store: SessionStore): SlabStats[] {
  const slabs = slabsOf.get(store)
  if (!slabs) throw new Error('not an lru session store')
  return slabs.classes.map(c => ({ slotSize: c.slotSize, slots: c.slots, inUse: c.inUse, raw: c.raw() }))
}

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
  const slabs = new Slabs(init.maxEntries)
  const cache = new LRUCache<string, Stored>({
    max: init.maxEntries,
    ttl: init.ttlMs,
    updateAgeOnGet: false,
    allowStale: false,
    // called once per handle that leaves the cache (evicted, replaced by another
    // handle, expired, deleted, cleared): wipe the key material, free the slot.
    // Setting a key to the handle it already holds calls nothing.
    dispose: (v) => { slabs.release(v) }
  })
  const sweep = setInterval(() => { cache.purgeStale() }, Math.min(init.ttlMs, MAX_SWEEP_MS))
  sweep.unref()
  let closed = false
  const open = () => { if (closed) throw storeClosed('sessions') }

  /** insert or replace; the value is copied (the caller may reuse or zero its buffer) */
  const put = (id: string, value: Uint8Array): void => {
    const old = cache.peek(id, { allowStale: true })
    // same class: overwrite the slot in place; set() still refreshes the TTL and recency
    if (old !== undefined && slabs.rewrite(old, value)) {
      cache.set(id, old)
      return
    }
    // full: evict the oldest (as set() would) before taking a slot, so a class never
    // needs more than maxEntries slots
    if (old === undefined && cache.size >= init.maxEntries) cache.pop()
    cache.set(id, slabs.store(value))
  }

  const store: SessionStore = {
    kind: 'memory',
    async get (id) {
      open()
      const v = cache.get(id)
      return v === undefined ? undefined : slabs.read(v)
    },
    async set (id, value) {
      open()
      put(id, value)
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
  slabsOf.set(store, slabs)
  return store
}
