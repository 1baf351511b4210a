// Path-bias accounting for one guard, after Tor's path-spec §7 ("Detecting route
// manipulation by Guard nodes"): a hostile guard can fail every circuit whose later hops
// it does not control, so that the client retries until it picks the attacker's exit.
// Each guard counts the circuits that got past it to their second hop (attempts) and
// the ones built completely (successes); once there are `minCircuits` attempts, the
// success rate is judged against three thresholds (notice, warn, extreme) and, at the
// extreme one, the guard is avoided for good (Tor's pb_dropguards, on here). Counts are
// halved past `scaleCircuits` so that old history fades (pb_scalecircs, pb_multfactor 1
// / pb_scalefactor 2). Pure: no I/O, no clock. Circuit *use* (streams) is not counted.

export interface PathBiasParams {
  /** attempts before any judgement (path-spec pb_mincircs: 150) */
  minCircuits: number
  /** below this success rate: a notice (pb_noticepct: 70 %) */
  noticeRate: number
  /** below this: a warning (pb_warnpct: 50 %) */
  warnRate: number
  /** below this: the guard is avoided (pb_extremepct: 30 %, with pb_dropguards = 1) */
  extremeRate: number
  /** past this many attempts both counts are halved (pb_scalecircs: 300) */
  scaleCircuits: number
}

export const PATH_BIAS_DEFAULTS: PathBiasParams = { minCircuits: 150, noticeRate: 0.7, warnRate: 0.5, extremeRate: 0.3, scaleCircuits: 300 }

export interface PathBiasCounts { attempts: number, successes: number }

export type PathBiasVerdict = 'ok' | 'notice' | 'warn' | 'extreme'

/** the counts after one more circuit through the guard got past it; `built`: it completed */
export function countCircuit (c: PathBiasCounts, built: boolean, p: PathBiasParams): PathBiasCounts {
  let attempts = c.attempts + 1
  let successes = c.successes + (built ? 1 : 0)
  if (attempts > p.scaleCircuits) {
    attempts = Math.floor(attempts / 2)
    successes = Math.min(attempts, Math.floor(successes / 2))
  }
  return { attempts, successes }
}

/** how the counts look: 'ok' until there are enough attempts to judge */
export function judge (c: PathBiasCounts, p: PathBiasParams): PathBiasVerdict {
  if (c.attempts < p.minCircuits) return 'ok'
  const rate = c.successes / c.attempts
  if (rate < p.extremeRate) return 'extreme'
  if (rate < p.warnRate) return 'warn'
  if (rate < p.noticeRate) return 'notice'
  return 'ok'
}
