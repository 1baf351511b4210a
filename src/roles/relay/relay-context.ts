// What the relay's two halves (from-prev.ts: cells from the previous hop; from-next.ts:
// cells from the next hop) share: the options, the injected components, the channels,
// the local routing table, the per-circuit queue, and the hop records in the session
// store. Built once by RelayCore; holds no protocol rule.
import { isMarshmelloError } from '../../errors.js'
import type { Logger } from '../../log.js'
import type { SessionStore } from '../../storage/types.js'
import { HOP_RECORD_SIZE, HopState } from '../../onion/circuits/hop-state.js'
import type { MiddleHopAction } from '../../onion/circuits/middle-hop.js'
import { listedHops, type Consensus } from '../../onion/directory/consensus.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import { EphemeralPool } from '../../onion/handshake/ephemeral-pool.js'
import type { Channel, ChannelAuthSigner } from '../common/channel-types.js'
import { systemClock, type Clock } from '../common/clock.js'
import { KeyedQueue, TokenBuckets } from '../common/limits.js'
import type { HopIdentity } from '../common/identity.js'
import type { RelayChannelPool } from './channel-pool.js'
import { RoutingTable } from './routing.js'
import { RelayCounters, apply, type RelayEnd, type TraceEvent } from './perform.js'

export interface RelayCoreInit {
  identity: HopIdentity
  /** CREATE cells per second per source address (and burst) */
  createRate: number
  createBurst: number
  /** how long an extended CREATE may wait for CREATED (default 10 s) */
  extendTimeoutMs?: number
  /** how often local routing entries of circuits the store no longer holds (expired, evicted) are dropped (default 30 s) */
  sweepMs?: number
  /**
   * how long the circuits of a closed inbound channel are kept for the previous hop
   * to come back on a new channel (a replaced relay process, a client reattaching);
   * default 3000 ms
   */
  reattachGraceMs?: number
}

export interface RelayCoreComponents {
  sessions: SessionStore
  consensus: () => Consensus | null
  /** opens a channel to a listed hop; `auth` is set when the hop is a relay (§2.3: the server takes none) */
  openChannel: (target: Descriptor, auth: ChannelAuthSigner | undefined) => Promise<Channel>
  log: Logger
  /** default: the system clock */
  clock?: Clock
  trace?: (e: TraceEvent) => void
}

export class RelayContext {
  readonly counters = new RelayCounters()
  readonly clock: Clock
  readonly routes = new RoutingTable()
  /** one circuit's work in order, circuits concurrently */
  readonly queue = new KeyedQueue()
  readonly buckets: TokenBuckets
  /** X25519 keys made ahead, so answering a CREATE imports none */
  readonly ephemerals = new EphemeralPool()
  /** every hop record is serialised into this one buffer: SessionStore.set copies it before returning */
  private readonly recordBuffer = Buffer.alloc(HOP_RECORD_SIZE)
  private listedOf: { c: Consensus, m: Map<string, Descriptor> } | null = null
  shuttingDown = false

  constructor (readonly init: RelayCoreInit, readonly c: RelayCoreComponents, readonly channels: RelayChannelPool) {
    this.clock = c.clock ?? systemClock
    this.buckets = new TokenBuckets(init.createRate, init.createBurst, 10_000, () => this.clock.now())
  }

  get sessions (): SessionStore { return this.c.sessions }

  /** the hop (relay or server) listed with this fingerprint in the current consensus; one map per consensus */
  readonly listed = (fpHex: string): Descriptor | undefined => {
    const c = this.c.consensus()
    if (!c) return undefined
    if (this.listedOf?.c !== c) this.listedOf = { c, m: listedHops(c) }
    return this.listedOf.m.get(fpHex)
  }

  async load (key: string): Promise<HopState | undefined> {
    const rec = await this.c.sessions.get(key)
    return rec ? HopState.deserialize(rec) : undefined
  }

  /** the hop's record, in a buffer reused for every record (the store copies it) */
  record (hop: HopState): Buffer { return hop.serialize(this.recordBuffer) }

  async save (key: string, hop: HopState): Promise<void> {
    await this.c.sessions.set(key, this.record(hop))
  }

  reject (what: string, err?: unknown): void {
    this.counters.cellsRejected++
    this.c.log.debug('cell rejected', { what, code: isMarshmelloError(err) ? err.code : undefined })
  }

  /** carries out the middle hop's actions for one circuit */
  perform (actions: MiddleHopAction[], end: RelayEnd): void {
    apply(actions, end, { counters: this.counters, reject: (what, err) => this.reject(what, err), trace: this.c.trace })
  }
}
