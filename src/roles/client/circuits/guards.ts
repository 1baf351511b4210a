// The client's entry guard, the whole policy and its persistence: which relay a circuit
// enters through, what a failure through it counts for, and when it is replaced. Today's
// policy: one guard, kept while the consensus lists it, replaced after `maxFailures`
// consecutive failures as the first hop; while it is excluded (it just failed) a build
// enters through another relay without replacing it. Path rules are network.ts's.
import { randomInt } from '../../../onion/crypto/random.js'
import type { Consensus } from '../../../onion/directory/consensus.js'
import { loadSettings, updateSettings } from '../profile/settings.js'
import type { GuardState } from './guard-state.js'

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

/** a guard state that lasts as long as the process (tests, the bench) */
export function memoryGuardStore (initial?: GuardState): GuardStore {
  let g = initial
  return { load: async () => g && { ...g }, save: async (next) => { g = next && { ...next } } }
}

/** the entry decided for one build attempt; hand it back to adopt/succeeded/failed */
export interface GuardPick {
  /** the relay to enter through, or undefined: any relay the path rules allow */
  readonly entry?: string
  /** the entry is the guard: its failures count */
  readonly isGuard: boolean
  /** the entry is a guard drawn just now, kept once adopt() is called */
  readonly fresh: boolean
  /** the guard state this pick was made from */
  readonly kept?: GuardState
}

export interface GuardsInit {
  store: GuardStore
  /** consecutive failures as the first hop before the guard is replaced (default 3) */
  maxFailures?: number
}

export class Guards {
  private readonly maxFailures: number

  constructor (private readonly init: GuardsInit) {
    this.maxFailures = init.maxFailures ?? 3
  }

  /** the guard kept now, if any */
  current (): Promise<GuardState | undefined> { return this.init.store.load() }

  /**
   * The entry for a build through `consensus`, avoiding `exclude`: the kept guard when
   * listed and not excluded; a new guard when none is kept or it left the consensus;
   * while the kept guard is excluded, no entry (the path draws one that is not the guard).
   */
  async pick (consensus: Consensus, exclude: ReadonlySet<string>): Promise<GuardPick> {
    const kept = await this.init.store.load()
    const listed = kept !== undefined && consensus.relays.some((r) => r.fingerprint === kept.fingerprint)
    if (listed) return exclude.has(kept.fingerprint) ? { isGuard: false, fresh: false, kept } : { entry: kept.fingerprint, isGuard: true, fresh: false, kept }
    const pool = consensus.relays.filter((r) => !exclude.has(r.fingerprint))
    if (pool.length === 0) return { isGuard: false, fresh: false, kept }
    return { entry: pool[randomInt(pool.length)].fingerprint, isGuard: true, fresh: true, kept }
  }

  /** a path was found through the pick's entry: a fresh guard is kept from now on */
  async adopt (p: GuardPick): Promise<void> {
    if (p.fresh && p.entry) await this.init.store.save({ fingerprint: p.entry, failures: 0 })
  }

  /** a circuit was built through the pick's entry: the kept guard's failures start over */
  async succeeded (p: GuardPick): Promise<void> {
    if (p.kept && p.kept.failures > 0 && p.entry === p.kept.fingerprint) await this.init.store.save({ fingerprint: p.entry, failures: 0 })
  }

  /**
   * The pick's entry failed as the first hop. A guard is replaced after repeated
   * failures, not at the first one (a guard that changes often helps an attacker).
   */
  async failed (p: GuardPick): Promise<void> {
    if (!p.isGuard || !p.entry) return
    const g = await this.init.store.load()
    const failures = (g?.fingerprint === p.entry ? g.failures : 0) + 1
    await this.init.store.save(failures >= this.maxFailures ? undefined : { fingerprint: p.entry, failures })
  }
}
