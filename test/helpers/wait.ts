// Waiting in tests: `sleep` (node:timers/promises, for a time that must pass, e.g. a
// TTL) and `waitUntil` (poll a condition with a deadline: use it whenever the wait
// is for something to happen, never a fixed sleep).
import { setTimeout as sleep } from 'node:timers/promises'

export { sleep }

/** polls `fn` every `everyMs` until it returns true; false once `timeoutMs` has passed */
export async function waitUntil (fn: () => boolean | Promise<boolean>, { timeoutMs = 5000, everyMs = 25 } = {}): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await fn()) return true
    await sleep(everyMs)
  }
  return await fn()
}
