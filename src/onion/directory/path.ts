// Path choice (docs/PROTOCOL.md §7.4, after Tor's path-spec §2.2): the entry the guard
// module picked, then each further relay drawn uniformly at random (no bandwidth
// weights: the consensus carries none) from the relays related to none already on the
// path — not the same identity, not a mutual family, not in the same IPv4 /16 or IPv6
// /32 (families.ts). Only relays listed by an IP literal are ever candidates, so
// nothing is resolved. In a private test network (every listed relay on a non-public
// address: a devnet on loopback) the subnet rule is waived, declared families are not;
// outside one, a relay on a non-public address is never chosen.
import { MarshmelloError } from '../../errors.js'
import { randomInt } from '../crypto/random.js'
import { addressClass } from './address.js'
import type { Consensus } from './consensus.js'
import type { Descriptor } from './descriptor.js'
import { allPrivate, hopIp, related } from './families.js'

/** `guard`: the first hop's fingerprint (the entry, whether or not it is the client's guard) */
export interface PathChoice { path: Descriptor[], guard: string }

export interface PathOptions {
  /** relays before the final hop (default 3) */
  hops?: number
  /** the guard module's entry: first, or MM_ERR_NO_GUARD when it is not a usable candidate */
  guard?: string
  /** fingerprints to avoid (e.g. a relay that just failed) */
  exclude?: ReadonlySet<string>
}

/**
 * The relays a path may use: listed by IP literal, not excluded, and public unless the
 * whole list is private (a test network). `subnets` says whether the subnet rule applies.
 */
export function candidateRelays (c: Pick<Consensus, 'relays'>, exclude?: ReadonlySet<string>): { pool: Descriptor[], subnets: boolean } {
  const listed = c.relays.filter((r) => hopIp(r) !== null && !exclude?.has(r.fingerprint))
  if (allPrivate(listed)) return { pool: listed, subnets: false }
  return { pool: listed.filter((r) => addressClass(hopIp(r)!) === 'public'), subnets: true }
}

/**
 * Chooses `hops` relays then the final hop. `guard`, when given, comes first (never
 * replaced by another entry); without one the first hop is drawn like the others. Each later hop is uniform over the candidates
 * related to no hop already chosen. Throws MM_ERR_NO_SERVER, MM_ERR_NO_GUARD or MM_ERR_TOO_FEW_RELAYS.
 */
export function choosePath (c: Consensus, opts: PathOptions = {}): PathChoice {
  const hops = opts.hops ?? 3
  if (!c.server) throw new MarshmelloError('MM_ERR_NO_SERVER', 'the consensus lists no server yet; try again in a few seconds')
  const { pool, subnets } = candidateRelays(c, opts.exclude)
  if (pool.length < hops) throw new MarshmelloError('MM_ERR_TOO_FEW_RELAYS', `the consensus lists ${pool.length} usable relay(s); a circuit needs ${hops}`)
  const chosen: Descriptor[] = []
  const fits = (r: Descriptor) => !chosen.some((x) => related(x, r, { subnets }))
  const guard = pool.find((r) => r.fingerprint === opts.guard)
  // the entry is the guard the guard module chose, or the path fails: never another relay in its place
  if (opts.guard !== undefined && !guard) throw new MarshmelloError('MM_ERR_NO_GUARD', 'the chosen guard is not usable in this consensus; the client will not enter through another relay')
  if (guard) chosen.push(guard)
  while (chosen.length < hops) {
    const candidates = pool.filter(fits)
    if (candidates.length === 0) throw new MarshmelloError('MM_ERR_TOO_FEW_RELAYS', 'not enough unrelated relays for a circuit (each hop in its own IPv4 /16 or IPv6 /32, no two of one family)')
    chosen.push(candidates[randomInt(candidates.length)])
  }
  return { path: [...chosen, c.server], guard: chosen[0].fingerprint }
}
