// A bounded table whose entries expire `ttlMs` after their last use, kept in one Map in
// last-use order (a get or a set moves its key to the end): the first entry is both the
// one to evict when the table is full and the first to expire, since every entry has
// the same TTL. The final hop keeps its circuits here. lru-cache did this job before;
// it clears arrays of `max` slots whenever its last entry is deleted, which cost a quiet
// server ~0.5 ms per circuit torn down with the default 100,000 circuits.

export interface ExpiringTableInit<V> {
  max: number
  ttlMs: number
  /** called once for each value that leaves the table (evicted, expired, replaced, deleted, cleared) */
  dispose?: (value: V) => void
  /** clock for tests (ms, monotonic); default performance.now */
  now?: () => number
}

interface Entry<V> { value: V, usedAt: number }

export class ExpiringTable<V> {
  private readonly map = new Map<string, Entry<V>>()
  private readonly now: () => number

  constructor (private readonly init: ExpiringTableInit<V>) {
    if (!Number.isInteger(init.max) || init.max < 1) throw new RangeError(`max must be a positive integer, got ${init.max}`)
    if (!(init.ttlMs > 0)) throw new RangeError(`ttlMs must be positive, got ${init.ttlMs}`)
    this.now = init.now ?? (() => performance.now())
  }

  /** entries held, expired ones included until a get or purge() drops them */
  get size (): number { return this.map.size }

  /** the value, unless missing or expired; a hit counts as a use */
  get (key: string): V | undefined {
    const e = this.map.get(key)
    if (e === undefined) return undefined
    const t = this.now()
    if (t - e.usedAt > this.init.ttlMs) {
      this.remove(key, e)
      return undefined
    }
    e.usedAt = t
    this.map.delete(key)
    this.map.set(key, e)
    return e.value
  }

  /** inserts or replaces; when full, the least recently used entry goes first */
  set (key: string, value: V): this {
    const old = this.map.get(key)
    if (old !== undefined) {
      this.map.delete(key)
      if (old.value !== value) this.init.dispose?.(old.value)
    } else if (this.map.size >= this.init.max) {
      const [k, e] = this.map.entries().next().value!
      this.remove(k, e)
    }
    this.map.set(key, { value, usedAt: this.now() })
    return this
  }

  delete (key: string): boolean {
    const e = this.map.get(key)
    if (e === undefined) return false
    this.remove(key, e)
    return true
  }

  keys (): IterableIterator<string> { return this.map.keys() }

  /** drops expired entries (they are all at the front); returns how many */
  purge (): number {
    const t = this.now()
    let n = 0
    for (const [k, e] of this.map) {
      if (t - e.usedAt <= this.init.ttlMs) break
      this.remove(k, e)
      n++
    }
    return n
  }

  clear (): void {
    for (const [k, e] of this.map) this.remove(k, e)
  }

  private remove (key: string, e: Entry<V>): void {
    this.map.delete(key)
    this.init.dispose?.(e.value)
  }
}
