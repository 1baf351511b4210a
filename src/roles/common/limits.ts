// Small bounded helpers for roles: a per-key token bucket (handshake rate limits,
// as Tor's 3 circuits/s burst 90 per address) and a per-key serial queue that
// keeps one circuit's cells in order while different circuits run concurrently.
import { LRUCache } from 'lru-cache'

export class TokenBuckets {
  private readonly buckets: LRUCache<string, { tokens: number, at: number }>
  constructor (private readonly ratePerSec: number, private readonly burst: number, maxKeys = 10_000, private readonly now = () => Date.now()) {
    this.buckets = new LRUCache({ max: maxKeys })
  }

  /** whether `key` has a token left, without taking it */
  has (key: string): boolean {
    const b = this.buckets.get(key)
    if (!b) return true
    return Math.min(this.burst, b.tokens + ((this.now() - b.at) / 1000) * this.ratePerSec) >= 1
  }

  /** takes one token for `key`; false when the key is over its rate */
  take (key: string): boolean {
    const t = this.now()
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerSec)
    b.at = t
    const ok = b.tokens >= 1
    if (ok) b.tokens -= 1
    this.buckets.set(key, b)
    return ok
  }
}

export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>()

  /** runs fn after every earlier fn of the same key; errors go to onError. The promise settles (never rejects) when fn is done */
  run (key: string, fn: () => Promise<void> | void, onError: (err: unknown) => void): Promise<void> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    const next = prev.then(fn).catch(onError)
    this.tails.set(key, next)
    next.then(() => { if (this.tails.get(key) === next) this.tails.delete(key) })
    return next
  }

  get size (): number { return this.tails.size }
}
