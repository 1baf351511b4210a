// The embedded session store: in-process, bounded by `maxEntries` (the least recently
// set entry goes first) and expiring after `ttlMs` since the last set. Expired entries
// are purged by an unref'd timer and before every size(), so size() counts only live
// entries. Nothing is shared between processes and nothing survives a restart: by design.
//
// Values live in slabs, not in one Uint8Array each: a small typed array costs about
// 500 bytes of RSS (JSArrayBuffer, BackingStore, malloc) on top of its bytes, twice
// what a relay's 245-byte hop record needs. Each size class keeps fixed-size slots
// in a few large chunks, with the time of the last set beside each slot. A slot is
// wiped when its entry goes, before it is reused.
//
// The index is one Map from id to a number (class and slot) in the order of the last
// set: re-setting an id moves it to the end, so the first entry is both the one to
// evict and the first to expire (one TTL for all). lru-cache did this job before; it
// clears its arrays, O(maxEntries), whenever its last entry is deleted, which cost a
// quiet relay ~0.5 ms per circuit torn down (profiled in the circuit-build bench).
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

/** A value longer than the largest slot: a private copy (rare for a relay: correct, not compact). */
interface Big { bytes: Uint8Array, stamp: number, version: number }

/** What the index holds per id: a slab handle (slot × classes + class), or a Big. */
type Stored = number | Big

interface Chunk {
  bytes: Uint8Array
  /** used length of each slot; the bytes past it are zero */
  lengths: Uint16Array
  /** when each slot was last set (performance.now() ms) */
  stamps: Float64Array
  /** the store's version of each slot's value (SessionStore.getVersioned) */
  versions: Float64Array
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

  stamp (slot: number, t: number, version: number): void {
    const c = this.chunks[slot >>> CHUNK_BITS]
    c.stamps[slot & CHUNK_MASK] = t
    c.versions[slot & CHUNK_MASK] = version
  }
  versionOf (slot: number): number { return this.chunks[slot >>> CHUNK_BITS].versions[slot & CHUNK_MASK] }
  stampOf (slot: number): number { return this.chunks[slot >>> CHUNK_BITS].stamps[slot & CHUNK_MASK] }

  /** wipes the slot and returns it to the free list */
  release (slot: number): void {
    const { bytes, lengths } = this.chunks[slot >>> CHUNK_BITS]
    const i = slot & CHUNK_MASK
    const at = i * this.slotSize
    bytes.fill(0, at, at + lengths[i])
    lengths[i] = 0
    this.chunks[slot >>> CHUNK_BITS].versions[i] = 0
    this.free[this.freeCount++] = slot
  }

  /** the raw chunks (tests check wiping on them) */
  raw (): Uint8Array[] { return this.chunks.map(c => c.bytes) }

  /** one more chunk, its slots pushed free (lowest on top) */
  private grow (): void {
    const n = Math.min(CHUNK_SLOTS, this.maxSlots - this.capacity)
    // unreachable while every slot belongs to a cache entry and the cache is bounded
    if (n <= 0) throw new Error(`session slab of ${this.slotSize}-byte slots is full (${this.capacity})`)
    this.chunks.push({ bytes: new Uint8Array(n * this.slotSize), lengths: new Uint16Array(n), stamps: new Float64Array(n), versions: new Float64Array(n) })
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

  /** a handle to a copy of `value`, set at `t` as `version` */
  store (value: Uint8Array, t: number, version: number): Stored {
    const c = this.classFor(value.length)
    if (c < 0) return { bytes: Uint8Array.from(value), stamp: t, version }
    const slot = this.classes[c].take(value)
    this.classes[c].stamp(slot, t, version)
    return slot * SLOT_SIZES.length + c
  }

  /** writes `value` over `h` at `t` when it fits the same class; false when it needs another handle */
  rewrite (h: Stored, value: Uint8Array, t: number, version: number): boolean {
    if (typeof h !== 'number' || this.classFor(value.length) !== h % SLOT_SIZES.length) return false
    this.slabOf(h).write(this.slotOf(h), value)
    this.slabOf(h).stamp(this.slotOf(h), t, version)
    return true
  }

  read (h: Stored): Uint8Array {
    return typeof h === 'number' ? this.slabOf(h).read(this.slotOf(h)) : Uint8Array.from(h.bytes)
  }

  versionOf (h: Stored): number {
    return typeof h === 'number' ? this.slabOf(h).versionOf(this.slotOf(h)) : h.version
  }

  /** when `h` was last set */
  stampOf (h: Stored): number {
    return typeof h === 'number' ? this.slabOf(h).stampOf(this.slotOf(h)) : h.stamp
  }

  /** wipes the value; a slot goes back to its free list */
  release (h: Stored): void {
    if (typeof h === 'number') this.slabOf(h).release(this.slotOf(h))
    else h.bytes.fill(0)
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
  /** id → handle, in the order of the last set */
  const index = new Map<string, Stored>()
  const now = () => performance.now()
  const expired = (h: Stored, t: number) => t - slabs.stampOf(h) > init.ttlMs

  const remove = (id: string, h: Stored) => {
    index.delete(id)
    slabs.release(h)
  }
  /** drops expired entries: they are all at the front */
  const purge = () => {
    const t = now()
    for (const [id, h] of index) {
      if (!expired(h, t)) break
      remove(id, h)
    }
  }
  const sweep = setInterval(purge, Math.min(init.ttlMs, MAX_SWEEP_MS))
  sweep.unref()
  let closed = false
  const open = () => { if (closed) throw storeClosed('sessions') }

  /** the last version given out: versions are unique in the store, never reused */
  let lastVersion = 0
  /** insert or replace; the value is copied (the caller may reuse or zero its buffer); returns its version */
  const put = (id: string, value: Uint8Array): number => {
    const t = now()
    const version = ++lastVersion
    let h = index.get(id)
    if (h !== undefined) {
      index.delete(id) // re-inserted below, at the end
      // same class: overwrite the slot in place; otherwise wipe it and take another
      if (!slabs.rewrite(h, value, t, version)) {
        slabs.release(h)
        h = undefined
      }
    } else if (index.size >= init.maxEntries) {
      // full: the least recently set entry goes before a slot is taken, so a class
      // never needs more than maxEntries slots
      const [oldId, oldH] = index.entries().next().value!
      remove(oldId, oldH)
    }
    index.set(id, h ?? slabs.store(value, t, version))
    return version
  }
  /** the live handle of `id`, dropping it when expired */
  const live = (id: string): Stored | undefined => {
    const h = index.get(id)
    if (h === undefined) return undefined
    if (expired(h, now())) {
      remove(id, h)
      return undefined
    }
    return h
  }

  const store: SessionStore = {
    kind: 'memory',
    async get (id) {
      open()
      const h = index.get(id)
      if (h === undefined) return undefined
      if (expired(h, now())) {
        remove(id, h)
        return undefined
      }
      return slabs.read(h)
    },
    async set (id, value) {
      open()
      put(id, value)
    },
    async create (id, value) {
      open()
      if (live(id) !== undefined) return false
      put(id, value)
      return true
    },
    async getVersioned (id) {
      open()
      const h = live(id)
      return h === undefined ? undefined : { value: slabs.read(h), version: slabs.versionOf(h) }
    },
    async compareAndSet (id, value, expected) {
      open()
      const h = live(id)
      if ((h === undefined ? 0 : slabs.versionOf(h)) !== expected) return 0
      return put(id, value)
    },
    async delete (id) {
      open()
      const h = index.get(id)
      if (h !== undefined) remove(id, h)
    },
    async size () {
      open()
      purge()
      return index.size
    },
    async close () {
      if (closed) return
      closed = true
      clearInterval(sweep)
      for (const [id, h] of index) remove(id, h)
    }
  }
  slabsOf.set(store, slabs)
  return store
}
