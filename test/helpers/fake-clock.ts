// A clock for tests (src/roles/common/clock.ts): time stands still until advance() moves
// it, running the timers that fall due in order, so a test waits out a rotation or a
// timeout without sleeping. Real I/O still runs on the real event loop meanwhile.
import type { Clock, Timer } from '../../src/roles/common/clock.js'

interface Entry { at: number, seq: number, fn: () => void, done: boolean }

export class FakeClock implements Clock {
  private t: number
  private seq = 0
  private entries: Entry[] = []

  constructor (start = Date.now()) { this.t = start }

  now (): number { return this.t }

  timeout (ms: number, fn: () => void): Timer {
    const e: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, done: false }
    this.entries.push(e)
    return { cancel: () => { e.done = true } }
  }

  sleep (ms: number): Promise<void> {
    return new Promise((resolve) => { this.timeout(ms, resolve) })
  }

  /** timers scheduled and not yet run or cancelled */
  get pending (): number { return this.entries.filter((e) => !e.done).length }

  /** moves time forward by `ms`, running each timer due on the way (what they start settles in between) */
  async advance (ms: number): Promise<void> {
    const end = this.t + ms
    for (;;) {
      await settle()
      const due = this.entries.filter((e) => !e.done && e.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (!due) break
      this.t = due.at
      due.done = true
      due.fn()
    }
    this.entries = this.entries.filter((e) => !e.done)
    this.t = end
    await settle()
  }
}

/** lets promise chains and immediates already queued run */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))
