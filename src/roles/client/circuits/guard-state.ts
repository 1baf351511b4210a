// What the client remembers of its entry guards between runs, as kept in the profile's
// settings.json (profile/settings.ts stores it; guards.ts owns what it means): the sampled
// guard set of Tor's guard-spec ("The Sampled Guard Set": each guard's date added, whether
// the last consensus listed it and since when it is missing, when it was confirmed) and
// each guard's path-bias counts (path-spec §7). Only the shapes and their check; no I/O,
// no policy. Reachability is not persisted (guard-spec keeps it in memory too).
import type { Descriptor } from '../../../onion/directory/descriptor.js'
import { isObject } from '../profile/files.js'

/** one guard of the sample, in sample order (guard-spec {SAMPLED_GUARDS}) */
export interface SampledGuard {
  /** the relay's identity fingerprint */
  fingerprint: string
  /** ms: when it joined the sample (guard-spec ADDED_ON_DATE, set up to a tenth of the lifetime in the past) */
  addedAt: number
  /** ms: the first time a consensus no longer listed it, while it stays unlisted (guard-spec FIRST_UNLISTED_AT) */
  unlistedSince?: number
  /** ms: the first time a circuit through it was built (guard-spec CONFIRMED_ON_DATE); confirmed guards come first */
  confirmedAt?: number
  /** path bias (path-spec §7): circuits that got past this guard to their second hop */
  attempts: number
  /** path bias: of those, circuits that were built completely */
  successes: number
  /** its success rate fell below the extreme threshold (path-spec §7): it is never used again */
  avoided?: boolean
  /**
   * its descriptor as the last consensus listed it, kept for primary guards only, so that
   * a restart fetches its first consensus through the guard (self-signed: checked on use)
   */
  descriptor?: Descriptor
}

export interface GuardState {
  v: 2
  sampled: SampledGuard[]
  /** the newest consensus validAfter this client accepted (PROTOCOL §7.7): nothing older is taken, across restarts */
  newestValidAfter?: number
}

const MAX_STRING = 4096
/** at most this many sampled guards are read back (guard-spec MAX_SAMPLE_SIZE is 60) */
export const MAX_SAMPLED = 60

const count = (v: unknown, name: string): number => {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`${name} must be a non-negative integer`)
  return v as number
}
const optionalTime = (v: unknown, name: string): number | undefined => v === undefined ? undefined : count(v, name)

function parseSampled (raw: unknown, i: number): SampledGuard {
  const at = `guard.sampled[${i}]`
  if (!isObject(raw) || typeof raw.fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(raw.fingerprint)) throw new Error(`${at}.fingerprint must be 64 lowercase hex`)
  const g: SampledGuard = {
    fingerprint: raw.fingerprint,
    addedAt: count(raw.addedAt, `${at}.addedAt`),
    attempts: count(raw.attempts, `${at}.attempts`),
    successes: count(raw.successes, `${at}.successes`),
  }
  const unlistedSince = optionalTime(raw.unlistedSince, `${at}.unlistedSince`)
  if (unlistedSince !== undefined) g.unlistedSince = unlistedSince
  const confirmedAt = optionalTime(raw.confirmedAt, `${at}.confirmedAt`)
  if (confirmedAt !== undefined) g.confirmedAt = confirmedAt
  if (g.successes > g.attempts) throw new Error(`${at}.successes must not exceed attempts`)
  if (raw.avoided !== undefined) {
    if (typeof raw.avoided !== 'boolean') throw new Error(`${at}.avoided must be a boolean`)
    if (raw.avoided) g.avoided = true
  }
  if (raw.descriptor !== undefined) {
    const d = raw.descriptor
    if (!isObject(d) || d.fingerprint !== g.fingerprint || JSON.stringify(d).length > 16 * MAX_STRING) throw new Error(`${at}.descriptor must be that guard's descriptor`)
    g.descriptor = d as unknown as Descriptor // its signature is checked where it is used
  }
  return g
}

/**
 * The guard state in `raw`, unknown fields dropped; throws an Error saying what is wrong.
 * The state of earlier builds (`{ fingerprint, failures }`, one guard) becomes a sample of
 * that one guard, added at time 0 (the lifetime then counts from the next update).
 */
export function parseGuardState (raw: unknown): GuardState {
  if (isObject(raw) && raw.v === undefined && typeof raw.fingerprint === 'string') {
    if (!/^[0-9a-f]{64}$/.test(raw.fingerprint)) throw new Error('guard.fingerprint must be 64 lowercase hex')
    return { v: 2, sampled: [{ fingerprint: raw.fingerprint, addedAt: 0, attempts: 0, successes: 0 }] }
  }
  if (!isObject(raw) || raw.v !== 2 || !Array.isArray(raw.sampled)) throw new Error('guard must be { v: 2, sampled: [...] }')
  if (raw.sampled.length > MAX_SAMPLED) throw new Error(`guard.sampled holds at most ${MAX_SAMPLED} guards`)
  const sampled = raw.sampled.map(parseSampled)
  if (new Set(sampled.map((g) => g.fingerprint)).size !== sampled.length) throw new Error('guard.sampled lists a guard twice')
  const newestValidAfter = optionalTime(raw.newestValidAfter, 'guard.newestValidAfter')
  return newestValidAfter === undefined ? { v: 2, sampled } : { v: 2, sampled, newestValidAfter }
}
