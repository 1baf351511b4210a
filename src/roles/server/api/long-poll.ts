// Long-poll bookkeeping for the messages service: requests wait on keys ("room R",
// "DMs of user U"); a stored message wakes every waiter on its keys. A waiter is
// registered BEFORE the first read so a message stored between the read and the wait
// is not missed. Bounded: past `max` concurrent waiters, wait() throws a 503.
// Leaves the HTTP side (timeouts, client aborts) to waitFor() and the routes.

import { MarshmelloError } from '../../../errors.js'

export interface Waiter {
  /** resolves once a message for one of the keys arrives (or the hub closes) */
  readonly woken: Promise<void>
  /** idempotent; frees the slot */
  cancel (): void
}

interface Entry { keys: string[], wake: () => void }

export class LongPollHub {
  private readonly byKey = new Map<string, Set<Entry>>()
  private count = 0

  constructor (readonly max: number) {}

  get active (): number { return this.count }

  wait (keys: string[]): Waiter {
    if (this.count >= this.max) {
      /** Thrown when too many long-polls are already waiting. */
      throw new MarshmelloError('MM_ERR_BUSY', 'too many waiting requests, retry later')
    }
    let resolve!: () => void
    const woken = new Promise<void>(r => { resolve = r })
    let done = false
    const entry: Entry = {
      keys,
      wake: () => {
        if (done) return
        done = true
        this.count--
        for (const k of keys) {
          const set = this.byKey.get(k)
          set?.delete(entry)
          if (set?.size === 0) this.byKey.delete(k)
        }
        resolve()
      },
    }
    for (const k of keys) {
      let set = this.byKey.get(k)
      if (set === undefined) this.byKey.set(k, set = new Set())
      set.add(entry)
    }
    this.count++
    return { woken, cancel: entry.wake }
  }

  notify (key: string): void {
    const set = this.byKey.get(key)
    if (set === undefined) return
    for (const e of [...set]) e.wake()
  }

  /** wakes everyone (server shutdown): they answer with what they have */
  wakeAll (): void {
    for (const set of [...this.byKey.values()]) for (const e of [...set]) e.wake()
  }
}

/**
 * Resolves when `woken` does, after `ms`, or when `signal` aborts, whichever comes
 * first; always clears its timer and listener.
 */
export function waitFor (woken: Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise<void>(resolve => {
    const finish = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', finish)
      resolve()
    }
    const timer = setTimeout(finish, ms)
    signal.addEventListener('abort', finish, { once: true })
    woken.then(finish, finish)
  })
}
