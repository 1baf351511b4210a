// The clock a role keeps time with: the wall clock and one-shot timers, injected so
// tests advance time instead of sleeping (test/helpers/fake-clock.ts). systemClock is
// Date.now and setTimeout; nothing here is monotonic or unref'd.

/** a scheduled callback; cancel() before it runs stops it (after, it does nothing) */
export interface Timer { cancel (): void }

export interface Clock {
  /** milliseconds since the epoch */
  now (): number
  /** runs `fn` once, `ms` from now */
  timeout (ms: number, fn: () => void): Timer
  /** resolves `ms` from now */
  sleep (ms: number): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  timeout (ms, fn) {
    const t = setTimeout(fn, ms)
    return { cancel: () => clearTimeout(t) }
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}
