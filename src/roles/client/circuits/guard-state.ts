// What the client remembers of its entry guard, as kept in the profile's settings.json
// (profile/settings.ts stores it; guards.ts owns what it means): the guard's fingerprint
// and its consecutive failures. Only the shape and its check; no I/O, no policy.

export interface GuardState {
  /** the entry guard's relay fingerprint */
  fingerprint: string
  /** consecutive failures as the first hop; the client replaces the guard past its threshold */
  failures: number
}

import { isObject } from '../profile/files.js'

const MAX_STRING = 4096

/** the guard state in `raw`, unknown fields dropped; throws an Error saying what is wrong */
export function parseGuardState (raw: unknown): GuardState {
  if (!isObject(raw) || typeof raw.fingerprint !== 'string' || raw.fingerprint.length === 0 || raw.fingerprint.length > MAX_STRING) {
    throw new Error('guard.fingerprint must be a non-empty string')
  }
  if (!Number.isSafeInteger(raw.failures) || (raw.failures as number) < 0) throw new Error('guard.failures must be a non-negative integer')
  return { fingerprint: raw.fingerprint, failures: raw.failures as number }
}
