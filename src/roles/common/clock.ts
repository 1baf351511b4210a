// Time for roles, injected so tests pass a fake one and advance it instead of sleeping
// (test/helpers/fake-clock.ts): now() in milliseconds, one-shot and repeating timers
// that never keep the process alive, and sleep() for a wait the caller awaits (which
// does). systemClock is the real one; nothing here is monotonic.

/** a scheduled callback; cancel() before it runs stops it (after, it does nothing) */
export interface Timer { cancel (): void }

export interface Clock {
  /** milliseconds since the epoch (Date.now() for the system clock) */
  now (): number
  /** runs `fn` once, `ms` from now */
  setTimeout (fn: () => void, ms: number): Timer
  /** runs `fn` every `ms` until cancelled */
  setInterval (fn: () => void, ms: number): Timer
  /** resolves `ms` from now */
  sleep (ms: number): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout (fn, ms) {
    const t = setTimeout(fn, ms).unref()
    return { cancel: () => clearTimeout(t) }
  },
  setInterval (fn, ms) {
    const t = setInterval(fn, ms).unref()
    return { cancel: () => clearInterval(t) }
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}
