// Which consensus a client or relay adopts (docs/PROTOCOL.md §7.7, issue 15 item 4).
// A signature says who made a document, not that it is the newest: ~360 documents are
// valid at any moment (one re-signed every 10 s for an hour), so a hostile directory
// source could serve an old one, say from a moment when honest relays had been knocked
// out. Two rules, pure:
//  - never back in time: a document whose validAfter is older than the newest one this
//    holder ever accepted (persisted across restarts by the caller) is refused;
//  - no silent collapse: while the held document is valid, one that drops more than
//    half of its relays is not adopted; the holder keeps the previous one and says so.
//    Once the held one has expired, the new one is taken (with the same warning).
import type { Consensus } from './consensus.js'

/** more than this share of the held consensus's relays missing from the next one: kept back */
export const MASS_DROP_SHARE = 0.5
/** below this many relays in the held consensus, a drop is not judged (a tiny network changes by halves) */
export const MASS_DROP_MIN_RELAYS = 4

export type FreshnessVerdict =
  | { adopt: true, newestValidAfter: number, dropped: number, warning?: string }
  | { adopt: false, code: 'MM_ERR_CONSENSUS_OLDER', message: string }
  | { adopt: false, code: 'MM_ERR_CONSENSUS_SHRANK', message: string, dropped: number }

/** how many of `held`'s relays `next` no longer lists */
export function droppedRelays (held: Consensus, next: Consensus): number {
  const still = new Set(next.relays.map((r) => r.fingerprint))
  return held.relays.filter((r) => !still.has(r.fingerprint)).length
}

/**
 * Whether `next` (already signature-checked) may replace `held`, given the newest
 * validAfter ever accepted here (0 when none) and the time now.
 */
export function judgeConsensus (held: Consensus | null, next: Consensus, newestValidAfter: number, now: number): FreshnessVerdict {
  const newest = Math.max(newestValidAfter, held?.validAfter ?? 0)
  if (next.validAfter < newest) {
    return { adopt: false, code: 'MM_ERR_CONSENSUS_OLDER', message: `a consensus from ${new Date(next.validAfter).toISOString()} is older than one accepted before (${new Date(newest).toISOString()})` }
  }
  const dropped = held ? droppedRelays(held, next) : 0
  const collapse = held !== null && held.relays.length >= MASS_DROP_MIN_RELAYS && dropped > MASS_DROP_SHARE * held.relays.length
  const what = held ? `the new consensus drops ${dropped} of the ${held.relays.length} relays listed before` : ''
  if (collapse && held.validUntil > now) {
    return { adopt: false, code: 'MM_ERR_CONSENSUS_SHRANK', message: `${what}; keeping the previous one while it is valid (until ${new Date(held.validUntil).toISOString()})`, dropped }
  }
  return { adopt: true, newestValidAfter: Math.max(newest, next.validAfter), dropped, ...(collapse ? { warning: `${what}; the previous one has expired, so it is taken` } : {}) }
}
