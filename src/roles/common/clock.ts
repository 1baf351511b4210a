// Time for roles, injected so tests can pass a fake one and advance it instead of
// sleeping: now() in milliseconds and one-shot / repeating timers that never keep the
// process alive. systemClock is the real one; test/roles/relay/fake-clock.ts has a fake.

export interface Timer { cancel (): void }

export interface Clock {
  /** milliseconds (Date.now() for the system clock) */
  now (): number
  setTimeout (fn: () => void, ms: number): Timer
  setInterval (fn: () => void, ms: number): Timer
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
}
