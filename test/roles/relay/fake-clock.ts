// A fake Clock for in-process tests (src/roles/common/clock.ts): time moves only when a
// test advances it, due timers fire in time order with pending work settled between
// them; and waits counted in event-loop turns, never in milliseconds.
import type { Clock, Timer } from '../../../src/roles/common/clock.js'

/** a clock that moves only when told; due timers fire in time order, with promises settled between them */
export class FakeClock implements Clock {
  private t = 1_000_000
  private timers: { at: number, fn: () => void, every?: number, live: boolean }[] = []
  now (): number { return this.t }
  setTimeout (fn: () => void, ms: number): Timer { return this.add(fn, ms) }
  setInterval (fn: () => void, ms: number): Timer { return this.add(fn, ms, ms) }
  private add (fn: () => void, ms: number, every?: number): Timer {
    const timer = { at: this.t + ms, fn, every, live: true }
    this.timers.push(timer)
    return { cancel: () => { timer.live = false } }
  }

  /** lets pending work run, then moves time by `ms`, firing each timer that falls due */
  async advance (ms: number): Promise<void> {
    await settle()
    const end = this.t + ms
    for (;;) {
      this.timers = this.timers.filter((x) => x.live)
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0]
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
