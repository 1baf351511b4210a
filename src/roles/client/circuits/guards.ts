// The client's entry guards, after Tor's guard-spec (a faithful subset of "The algorithm")
// and path-spec §7 (path bias): which relay every circuit, and every directory fetch after
// bootstrap, enters through; what a failure through it counts for; when it leaves.
// - The sampled guard set ("The Sampled Guard Set") persists in the profile: guards drawn
//   uniformly from the Guard-eligible relays of the consensus (no bandwidth weights: the
//   consensus has none), each with the date it was added (set up to a tenth of the lifetime
//   in the past), the time a consensus first omitted it, and when it was confirmed.
// - A guard is kept while unlisted for up to `removeUnlistedAfterMs` (REMOVE_UNLISTED_GUARDS_
//   AFTER, 20 days) and in all for `lifetimeMs` (GUARD_LIFETIME, 120 days); an unlisted guard
//   is not used, only remembered, so it comes back when it is listed again.
// - Primary guards ("Primary guards"): the first `primary` (N_PRIMARY_GUARDS, 1–3, default 3)
//   usable guards, confirmed ones first; a circuit goes through the first primary guard not
//   marked unreachable, in order ("Selecting guards for circuits"); when every primary is,
//   through the next usable sampled guard; when none is, MM_ERR_NO_GUARD. Never a relay
//   outside the sample.
// - Reachability ("The 'reachable' status", in memory only): a guard that failed as the first
//   hop is not tried again before its retry time (primary: 30 s doubling to 6 h; others:
//   10 min doubling to 36 h, the bases and caps of the spec's PRIMARY_GUARDS_RETRY_SCHED and
//   GUARDS_RETRY_SCHED, without jitter); when every usable guard is marked, the client's own
//   network is the likely cause, and the primary guards are retried at the first delay.
// - Path bias (path-spec §7, path-bias.ts): a guard whose circuits fail past it far more than
//   they should is reported (notice, warn) and, at the extreme rate, avoided for good.
// Deviations, stated: the sample grows only while it holds fewer usable guards than
// `sampleSize` (MIN_FILTERED_SAMPLE, 20), counting unreachable ones, so a client whose own
// network is down does not walk through the network's guards; no directory-guard set apart
// (the same guards serve directory fetches); no bridges, no restrictions beyond the path's.
import { randomInt } from '../../../onion/crypto/random.js'
import { hasFlag, type Consensus } from '../../../onion/directory/consensus.js'
import { verifyDescriptor, type Descriptor } from '../../../onion/directory/descriptor.js'
import { MarshmelloError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import { systemClock, type Clock } from '../../common/clock.js'
import { loadSettings, updateSettings } from '../profile/settings.js'
import { MAX_SAMPLED, type GuardState, type SampledGuard } from './guard-state.js'
import { PATH_BIAS_DEFAULTS, countCircuit, judge, type PathBiasParams, type PathBiasVerdict } from './path-bias.js'

export const DAY_MS = 86_400_000

/**
 * May this listed relay be a guard (guard-spec {GUARDS}: listed with the Guard flag)?
 * The directory gives Guard only after an unbroken run of reachability (PROTOCOL §7.3).
 */
export const isGuardEligible = (d: Descriptor, c: Consensus): boolean => d.role === 'relay' && hasFlag(c, d.fingerprint, 'Guard')

/** where the guard state lives between runs */
export interface GuardStore {
  load (): Promise<GuardState | undefined>
  save (g: GuardState | undefined): Promise<void>
}

/** the guard state in the profile's settings.json (HOME, or the default home) */
export const profileGuardStore = (home?: string): GuardStore => ({
  load: async () => (await loadSettings(home)).guard,
  save: async (g) => { await updateSettings(home, (s) => ({ ...s, guard: g })) },
})

/** a guard state that lasts as long as the process (tests, the bench, the simulation) */
export function memoryGuardStore (initial?: GuardState): GuardStore {
  let g = initial && structuredClone(initial)
  return { load: async () => g && structuredClone(g), save: async (next) => { g = next && structuredClone(next) } }
}

/** the guard chosen for one circuit or directory fetch; hand it back to report how it went */
export interface GuardPick {
  readonly guard: Descriptor
  /** one of the primary guards (else: the next sampled guard, every primary being unreachable) */
  readonly primary: boolean
}

/** a guard's path-bias verdict, reported once each time it gets worse */
export interface GuardReport {
  fingerprint: string
  nickname: string
  verdict: Exclude<PathBiasVerdict, 'ok'>
  attempts: number
  successes: number
  /** the guard is avoided from now on (the extreme verdict) */
  avoided: boolean
  message: string
}

export interface GuardsInit {
  store: GuardStore
  clock?: Clock
  log?: Logger
  /** primary guards (guard-spec N_PRIMARY_GUARDS), 1–3; default 3 */
  primary?: number
  /** usable guards the sample is filled to (MIN_FILTERED_SAMPLE); default 20, at most 60 */
  sampleSize?: number
  /** an unlisted guard leaves the sample after this long (REMOVE_UNLISTED_GUARDS_AFTER); default 20 days */
  removeUnlistedAfterMs?: number
  /** a guard leaves the sample this long after it was added (GUARD_LIFETIME); default 120 days */
  lifetimeMs?: number
  /** first retry delay of an unreachable primary guard (default 30 s; doubled per failure up to 6 h) */
  primaryRetryMs?: number
  /** first retry delay of another unreachable guard (default 10 min; doubled up to 36 h) */
  retryMs?: number
  pathBias?: Partial<PathBiasParams>
  /** which listed relays may be guards (default isGuardEligible) */
  eligible?: (d: Descriptor, c: Consensus) => boolean
  /** uniform integer in [0, n) (default: the CSPRNG; the simulation passes a seeded one) */
  random?: (n: number) => number
  /** told about every path-bias verdict that got worse (the client shows it; it is also logged) */
  onReport?: (r: GuardReport) => void
}

interface Reach { failures: number, retryAt: number, failedAt: number }

const SEVERITY: Record<PathBiasVerdict, number> = { ok: 0, notice: 1, warn: 2, extreme: 3 }

export class Guards {
  private state: GuardState | undefined
  private readonly reach = new Map<string, Reach>()
  private readonly reported = new Map<string, PathBiasVerdict>()
  private seen: Consensus | null = null
  private listedOf: { c: Consensus, m: Map<string, Descriptor> } | null = null
  private readonly clock: Clock
  private readonly log: Logger
  private readonly nPrimary: number
  private readonly sampleSize: number
  private readonly removeUnlistedAfter: number
  private readonly lifetime: number
  private readonly pb: PathBiasParams
  private readonly eligible: (d: Descriptor, c: Consensus) => boolean
  private readonly random: (n: number) => number

  constructor (private readonly init: GuardsInit) {
    this.clock = init.clock ?? systemClock
    this.log = init.log ?? silentLogger
    this.nPrimary = init.primary ?? 3
    if (!Number.isInteger(this.nPrimary) || this.nPrimary < 1 || this.nPrimary > 3) throw new MarshmelloError('MM_ERR_CONFIG', 'primary guards must be 1, 2 or 3')
    this.sampleSize = Math.min(MAX_SAMPLED, Math.max(this.nPrimary, init.sampleSize ?? 20))
    this.removeUnlistedAfter = init.removeUnlistedAfterMs ?? 20 * DAY_MS
    this.lifetime = init.lifetimeMs ?? 120 * DAY_MS
    this.pb = { ...PATH_BIAS_DEFAULTS, ...init.pathBias }
    this.eligible = init.eligible ?? isGuardEligible
    this.random = init.random ?? randomInt
  }

  /** the guard state (the sample, in order), as persisted */
  async current (): Promise<GuardState> { return structuredClone(await this.load()) }

  /** the sampled guards that are primary now, in order of use */
  async primaryGuards (c: Consensus): Promise<string[]> {
    await this.observe(c)
    return this.primaryOf(this.state!, this.listedGuards(c)).map((g) => g.fingerprint)
  }

  /**
   * Takes a new consensus into account (guard-spec "Whenever we get a new consensus"):
   * marks each sampled guard listed or unlisted, removes those unlisted too long or past
   * their lifetime, fills the sample up, keeps the primary guards' descriptors. Idempotent
   * for the same consensus object.
   */
  async observe (c: Consensus): Promise<void> {
    if (this.seen === c) return
    const s = await this.load()
    const now = this.clock.now()
    const listed = this.listedGuards(c)
    s.sampled = s.sampled.filter((g) => {
      if (g.addedAt === 0) g.addedAt = now // carried over from a state without dates
      if (listed.has(g.fingerprint)) delete g.unlistedSince
      else g.unlistedSince ??= now
      if (g.unlistedSince !== undefined && now - g.unlistedSince > this.removeUnlistedAfter) return this.dropped(g, 'unlisted for too long')
      if (now - g.addedAt > this.lifetime) return this.dropped(g, 'past its lifetime')
      return true
    })
    this.fill(s, listed, now)
    const primary = new Set(this.primaryOf(s, listed).map((g) => g.fingerprint))
    for (const g of s.sampled) {
      const d = listed.get(g.fingerprint)
      if (primary.has(g.fingerprint) && d) g.descriptor = d
      else delete g.descriptor
    }
    if (c.validAfter > (s.newestValidAfter ?? 0)) s.newestValidAfter = c.validAfter
    this.seen = c
    await this.save()
  }

  /** the newest consensus validAfter ever observed here (0 when none), kept in the profile (PROTOCOL §7.7) */
  async newestValidAfter (): Promise<number> {
    return (await this.load()).newestValidAfter ?? 0
  }

  /**
   * The guard for the next circuit through `c` (guard-spec "Selecting guards for circuits"):
   * the first primary guard not marked unreachable, else the next such sampled guard.
   * Throws MM_ERR_NO_GUARD when there is none: the client never enters through a relay
   * outside its sample, and says so instead. `skip`: guards passed over this once (not failed).
   */
  async pick (c: Consensus, skip?: ReadonlySet<string>): Promise<GuardPick> {
    await this.observe(c)
    const listed = this.listedGuards(c)
    const now = this.clock.now()
    const order = this.usableOrder(this.state!, listed)
    const free = (g: SampledGuard) => skip?.has(g.fingerprint) !== true && (this.reach.get(g.fingerprint)?.retryAt ?? 0) <= now
    const i = order.findIndex(free)
    if (i >= 0) return { guard: listed.get(order[i].fingerprint)!, primary: i < this.nPrimary }
    // every usable guard failed: most likely this computer's network is down, not all of them
    // (guard-spec's INTERNET_LIKELY_DOWN case): the primary guards are retried at the first
    // retry delay, not the doubled one, so the client is back as soon as its network is
    const base = this.init.primaryRetryMs ?? 30_000
    const j = order.slice(0, this.nPrimary).findIndex((g) => (this.reach.get(g.fingerprint)?.failedAt ?? 0) + base <= now)
    if (j >= 0) return { guard: listed.get(order[j].fingerprint)!, primary: true }
    throw this.noGuard(order, now)
  }

  /**
   * The guard to fetch the first consensus through at start, before there is one: the
   * first primary guard whose kept descriptor still verifies (self-signed by the guard's
   * listed identity) and that is not marked unreachable; undefined when none is kept
   * (the first run: the client bootstraps from its configured relays).
   */
  async stored (skip?: ReadonlySet<string>): Promise<GuardPick | undefined> {
    const s = await this.load()
    const now = this.clock.now()
    for (const g of this.ordered(s)) {
      if (!g.descriptor || g.avoided || skip?.has(g.fingerprint) === true || (this.reach.get(g.fingerprint)?.retryAt ?? 0) > now) continue
      try {
        const d = verifyDescriptor(g.descriptor, g.descriptor.published)
        if (d.fingerprint === g.fingerprint) return { guard: d, primary: true }
      } catch { /* a kept descriptor that no longer verifies is not used */ }
    }
    return undefined
  }

  /** the pick's guard failed as the first hop (no channel, no CREATED): not tried again before its retry time */
  connectFailed (p: GuardPick): void {
    const fp = p.guard.fingerprint
    const r = this.reach.get(fp) ?? { failures: 0, retryAt: 0, failedAt: 0 }
    r.failures++
    r.failedAt = this.clock.now()
    const [base, cap] = p.primary ? [this.init.primaryRetryMs ?? 30_000, 6 * 3600_000] : [this.init.retryMs ?? 600_000, 36 * 3600_000]
    r.retryAt = this.clock.now() + Math.min(cap, base * 2 ** Math.min(r.failures - 1, 20))
    this.reach.set(fp, r)
    this.log.info('guard unreachable; the next guard in order is used until its retry time', { fingerprint: fp, primary: p.primary, retryAt: r.retryAt })
  }

  /**
   * A circuit of `hops` hops (the final hop included) was built through the pick's guard:
   * it is reachable, confirmed if it was not, and (for circuits past it) a path-bias success.
   */
  async succeeded (p: GuardPick, hops: number): Promise<void> {
    this.reach.delete(p.guard.fingerprint)
    const g = (await this.load()).sampled.find((x) => x.fingerprint === p.guard.fingerprint)
    if (!g) return
    const confirm = g.confirmedAt === undefined
    if (confirm) g.confirmedAt = this.clock.now()
    if (hops >= 2) Object.assign(g, countCircuit(g, true, this.pb))
    if (confirm || hops >= 2) await this.save()
  }

  /**
   * A circuit got past the pick's guard (it answered CREATE) and then failed: a path-bias
   * attempt without success (path-spec §7). The guard's first-hop reachability is not in
   * question; whether it is to blame is what the rate over many circuits tells.
   */
  async pathFailed (p: GuardPick): Promise<void> {
    this.reach.delete(p.guard.fingerprint)
    const g = (await this.load()).sampled.find((x) => x.fingerprint === p.guard.fingerprint)
    if (!g) return
    Object.assign(g, countCircuit(g, false, this.pb))
    this.judgeGuard(g, p.guard)
    await this.save()
  }

  /* ------------------------------------------------------------ internals -- */

  private judgeGuard (g: SampledGuard, d: Descriptor): void {
    const verdict = judge(g, this.pb)
    const before = this.reported.get(g.fingerprint) ?? 'ok'
    if (SEVERITY[verdict] <= SEVERITY[before]) return
    this.reported.set(g.fingerprint, verdict)
    if (verdict === 'ok') return
    const avoided = verdict === 'extreme'
    if (avoided) g.avoided = true
    const rate = Math.round(100 * g.successes / g.attempts)
    const message = `guard ${d.nickname || 'relay'} ${g.fingerprint.slice(0, 8)}: only ${g.successes} of ${g.attempts} circuits through it (${rate} %) were built past it` +
      (avoided ? '; it may be failing circuits on purpose (path bias, Tor path-spec §7) and is no longer used' : `; below the ${verdict === 'warn' ? 'warning' : 'notice'} rate of path-spec §7`)
    const report: GuardReport = { fingerprint: g.fingerprint, nickname: d.nickname, verdict, attempts: g.attempts, successes: g.successes, avoided, message }
    if (verdict === 'notice') this.log.info(message, { fingerprint: g.fingerprint })
    else if (verdict === 'warn') this.log.warn(message, { fingerprint: g.fingerprint })
    else this.log.error(message, { fingerprint: g.fingerprint })
    this.init.onReport?.(report)
  }

  private noGuard (order: SampledGuard[], now: number): MarshmelloError {
    if (order.length === 0) {
      return new MarshmelloError('MM_ERR_NO_GUARD', 'no guard can be used: none of the sampled guards is listed in the consensus (or all are avoided for path bias); the client will not enter through another relay')
    }
    const base = this.init.primaryRetryMs ?? 30_000
    const next = Math.min(...order.map((g, i) => Math.min(this.reach.get(g.fingerprint)?.retryAt ?? now, i < this.nPrimary ? (this.reach.get(g.fingerprint)?.failedAt ?? now) + base : Infinity)))
    return new MarshmelloError('MM_ERR_NO_GUARD', `none of the ${order.length} usable guards can be reached now; retrying in ${Math.ceil((next - now) / 1000)} s (check this computer's connection; the client will not enter through another relay)`)
  }

  private dropped (g: SampledGuard, why: string): false {
    this.log.info(`guard left the sample: ${why}`, { fingerprint: g.fingerprint })
    this.reach.delete(g.fingerprint)
    return false
  }

  /** the consensus's guard-eligible relays, by fingerprint (worked out once per consensus) */
  private listedGuards (c: Consensus): Map<string, Descriptor> {
    if (this.listedOf?.c === c) return this.listedOf.m
    const m = new Map<string, Descriptor>()
    for (const d of c.relays) if (this.eligible(d, c)) m.set(d.fingerprint, d)
    this.listedOf = { c, m }
    return m
  }

  /** confirmed guards by confirmation date, then the others in sample order (guard-spec "Primary guards") */
  private ordered (s: GuardState): SampledGuard[] {
    const confirmed = s.sampled.filter((g) => g.confirmedAt !== undefined).sort((a, b) => a.confirmedAt! - b.confirmedAt!)
    return [...confirmed, ...s.sampled.filter((g) => g.confirmedAt === undefined)]
  }

  /** the guards that may be used now (listed, not avoided), primary ones first */
  private usableOrder (s: GuardState, listed: Map<string, Descriptor>): SampledGuard[] {
    return this.ordered(s).filter((g) => !g.avoided && listed.has(g.fingerprint))
  }

  private primaryOf (s: GuardState, listed: Map<string, Descriptor>): SampledGuard[] {
    return this.usableOrder(s, listed).slice(0, this.nPrimary)
  }

  /** adds uniformly drawn listed guards until the sample holds `sampleSize` usable ones */
  private fill (s: GuardState, listed: Map<string, Descriptor>, now: number): void {
    let usable = s.sampled.filter((g) => !g.avoided && listed.has(g.fingerprint)).length
    if (usable >= this.sampleSize || s.sampled.length >= MAX_SAMPLED) return
    const inSample = new Set(s.sampled.map((g) => g.fingerprint))
    const candidates = [...listed.keys()].filter((fp) => !inSample.has(fp))
    while (usable < this.sampleSize && s.sampled.length < MAX_SAMPLED && candidates.length > 0) {
      const i = this.random(candidates.length)
      const fp = candidates[i]
      candidates[i] = candidates[candidates.length - 1]
      candidates.pop()
      // guard-spec: ADDED_ON_DATE is RAND(now, GUARD_LIFETIME/10), so the date says little about when
      s.sampled.push({ fingerprint: fp, addedAt: now - this.random(Math.max(1, Math.floor(this.lifetime / 10))), attempts: 0, successes: 0 })
      usable++
    }
  }

  private async load (): Promise<GuardState> {
    this.state ??= (await this.init.store.load()) ?? { v: 2, sampled: [] }
    return this.state
  }

  private async save (): Promise<void> { await this.init.store.save(this.state) }
}
