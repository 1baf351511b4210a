// A clock for tests (src/roles/common/clock.ts): time moves only when a test advances
// it; due timers fire in time order with pending work settled between them, so a test
// waits out a rotation or a timeout without sleeping. Real I/O still runs on the real
// event loop meanwhile; settle() and until() wait in event-loop turns, never in time.
import type { Clock, Timer } from '../../src/roles/common/clock.js'

interface Entry { at: number, seq: number, fn: () => void, every?: number, live: boolean }

export class FakeClock implements Clock {
  private t: number
  private seq = 0
  private timers: Entry[] = []

  constructor (start = Date.now()) { this.t = start }

  now (): number { return this.t }
  setTimeout (fn: () => void, ms: number): Timer { return this.add(fn, ms) }
  setInterval (fn: () => void, ms: number): Timer { return this.add(fn, ms, Math.max(1, ms)) }
  sleep (ms: number): Promise<void> { return new Promise((resolve) => { this.add(resolve, ms) }) }

  private add (fn: () => void, ms: number, every?: number): Timer {
    const timer: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, every, live: true }
    this.timers.push(timer)
    return { cancel: () => { timer.live = false } }
  }

  /** timers scheduled and not yet run or cancelled */
  get pending (): number { return this.timers.filter((x) => x.live).length }

  /** lets pending work run, then moves time by `ms`, firing each timer that falls due */
  async advance (ms: number): Promise<void> {
    await settle()
    const end = this.t + ms
    for (;;) {
      this.timers = this.timers.filter((x) => x.live)
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (!due) break
      this.t = Math.max(this.t, due.at)
      if (due.every) due.at += due.every
      else due.live = false
      due.fn()
      await settle()
    }
    this.t = end
    await settle()
  }
}

/** lets every queued cell, store operation and callback run (event-loop turns, no time) */
export async function settle (turns = 30): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** waits (in event-loop turns, never time) until fn() holds; false if it never does */
export async function until (fn: () => boolean, turns = 2000): Promise<boolean> {
  for (let i = 0; i < turns && !fn(); i++) await new Promise((resolve) => setImmediate(resolve))
  return fn()
}
