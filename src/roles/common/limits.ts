// Small bounded helpers for roles: a per-key token bucket (CREATE budgets, as Tor's
// dos-spec "circuit creation" mitigation: a rate per address and a burst), a per-key
// serial queue that keeps one circuit's cells in order while different circuits run
// concurrently, bounded per key and clearable (docs/PROTOCOL.md §5.5), and the one
// sequence that orders queued data by age across a process (which circuit holds the
// oldest queued cell, for the memory budget).
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

let seq = 0
/** increasing for the life of the process: a smaller value was queued earlier */
export const nextSeq = (): number => ++seq

interface Task {
  fn: () => Promise<void> | void
  onError: (err: unknown) => void
  resolve: () => void
  bytes: number
  source?: string
  seq: number
}

interface Lane { tasks: (Task | undefined)[], head: number, running: boolean }

export interface KeyedQueueInit {
  /** tasks one key may have waiting (the running one not counted); full() says when it is reached */
  maxPerKey?: number
  /** called when waiting bytes of `source` change (a channel id: backpressure, the memory budget) */
  onBytes?: (source: string | undefined, delta: number) => void
}

export interface QueuedLane { key: string, seq: number, bytes: number }

export class KeyedQueue {
  private readonly lanes = new Map<string, Lane>()
  readonly maxPerKey: number
  /** bytes of every task waiting (not running) */
  bytes = 0

  constructor (private readonly init: KeyedQueueInit = {}) {
    this.maxPerKey = init.maxPerKey ?? Infinity
  }

  /**
   * Runs fn after every earlier fn of the same key; errors go to onError. The promise
   * settles (never rejects) when fn is done, or when it is cleared without running.
   * `bytes` (and its `source`) count while the task waits. The caller checks full() first.
   */
  run (key: string, fn: () => Promise<void> | void, onError: (err: unknown) => void, o: { bytes?: number, source?: string } = {}): Promise<void> {
    let lane = this.lanes.get(key)
    if (!lane) this.lanes.set(key, lane = { tasks: [], head: 0, running: false })
    const l = lane
    return new Promise((resolve) => {
      const bytes = o.bytes ?? 0
      l.tasks.push({ fn, onError, resolve, bytes, source: o.source, seq: nextSeq() })
      this.count(o.source, bytes)
      if (!l.running) void this.pump(key, l)
    })
  }

  /** tasks waiting for `key` (the running one not counted) */
  waiting (key: string): number {
    const l = this.lanes.get(key)
    return l ? l.tasks.length - l.head : 0
  }

  /** whether `key` has maxPerKey tasks waiting */
  full (key: string): boolean { return this.waiting(key) >= this.maxPerKey }

  /** drops every task of `key` that has not started (their promises resolve); returns how many */
  clear (key: string): number {
    const l = this.lanes.get(key)
    if (!l) return 0
    let n = 0
    for (let i = l.head; i < l.tasks.length; i++) {
      const t = l.tasks[i]!
      this.count(t.source, -t.bytes)
      t.resolve()
      n++
    }
    l.tasks = []
    l.head = 0
    if (!l.running) this.lanes.delete(key)
    return n
  }

  /** the keys with tasks waiting, oldest first waiting task first (for the memory budget) */
  byAge (): QueuedLane[] {
    const out: QueuedLane[] = []
    for (const [key, l] of this.lanes) {
      if (l.head >= l.tasks.length) continue
      let bytes = 0
      for (let i = l.head; i < l.tasks.length; i++) bytes += l.tasks[i]!.bytes
      if (bytes > 0) out.push({ key, seq: l.tasks[l.head]!.seq, bytes })
    }
    return out.sort((a, b) => a.seq - b.seq)
  }

  /** keys with a task running or waiting */
  get size (): number { return this.lanes.size }

  private count (source: string | undefined, delta: number): void {
    if (delta === 0) return
    this.bytes += delta
    this.init.onBytes?.(source, delta)
  }

  private async pump (key: string, l: Lane): Promise<void> {
    l.running = true
    // a task never runs inside run(): the caller's turn finishes first, as with promise chains
    await null
    while (l.head < l.tasks.length) {
      const t = l.tasks[l.head]!
      l.tasks[l.head++] = undefined
      if (l.head > 1024 && l.head * 2 > l.tasks.length) { l.tasks = l.tasks.slice(l.head); l.head = 0 }
      this.count(t.source, -t.bytes)
      try {
        await t.fn()
      } catch (err) {
        try { t.onError(err) } catch {}
      }
      t.resolve()
    }
    l.tasks = []
    l.head = 0
    l.running = false
    if (this.lanes.get(key) === l) this.lanes.delete(key)
  }
}
