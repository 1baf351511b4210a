// What the relay's two halves (from-prev.ts: cells from the previous hop; from-next.ts:
// cells from the next hop) share: the options, the injected components, the channels,
// the local routing table, the per-circuit queue, and the hop records in the session
// store, the CREATE budgets, the queued-bytes accounting (the memory budget and the
// backpressure of §5.5) and the circuits ended here. Built once by RelayCore; holds no
// protocol rule.
import { LRUCache } from 'lru-cache'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { HopError } from '../../onion/cells/relay-msg.js'
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
import { ExpiringTable } from '../common/expiring-table.js'
import type { ErrorCode } from '../../errors.js'
import type { HopIdentity } from '../common/identity.js'
import type { RelayChannelPool } from './channel-pool.js'
import { RoutingTable } from './routing.js'
import { RelayCounters, apply, type RelayEnd, type TraceEvent } from './perform.js'
import { endCircuit } from './end-circuit.js'

/** a hop record as read from the store: the state, and the version it was read at (§4.1) */
export interface LoadedHop {
  hop: HopState
  version: number
}

/** how often one cell is retried when another process wrote its circuit's record first (§4.1) */
export const RESERVE_TRIES = 3

export interface RelayCoreInit {
  identity: HopIdentity
  /** CREATE cells per second per source address (and burst) */
  createRate: number
  createBurst: number
  /** CREATE cells per second (and burst) per listed relay that proved its identity on its channel (§2.3); default 200, 2000 */
  relayCreateRate?: number
  relayCreateBurst?: number
  /** most circuits arriving at this process; a CREATE beyond is refused BUSY, none evicted (default 100,000) */
  maxCircuits?: number
  /** cells one circuit may have waiting at this relay before it ends (default 1024, 2 MiB) */
  circuitQueueCells?: number
  /** bytes of cells waiting in all queues (work and send) before the circuits holding the oldest end (default 256 MiB) */
  maxQueuedBytes?: number
  /** an inbound channel stops being read while this many bytes of its cells wait (default 8 MiB; resumes below half) */
  channelPauseBytes?: number
  /** a channel whose peer reads nothing for this long while cells wait for it is closed (default 10 s) */
  stallMs?: number
  /** how long an EXTEND may wait for its channel and then for CREATED (default 10 s each) */
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
  /**
   * the signed consensus exactly as received, served to clients on one-hop circuits
   * (PROTOCOL §7.3, a directory cache); absent: DATA on such a circuit is refused
   */
  directoryDocument?: () => string | null
  /** opens a channel to a listed hop; `auth` is set when the hop is a relay (§2.3: the server takes none) */
  openChannel: (target: Descriptor, auth: ChannelAuthSigner | undefined) => Promise<Channel>
  log: Logger
  /** default: the system clock */
  clock?: Clock
  trace?: (e: TraceEvent) => void
}

/**
 * Directory requests one client address may make of this relay as its directory cache
 * (§7.3): a burst of 60, then one a second. A client asks once per consensus refresh and
 * once per start of a program (each `marshmello send` is one), so honest clients, many
 * behind one address included, stay below it; each answer is tens of cells for the one
 * cell asking, so an address can no longer make a relay send its consensus without bound.
 */
export const DIRECTORY_REQUESTS = { perSecond: 1, burst: 60 }

export const RELAY_DEFAULTS = {
  relayCreateRate: 200,
  relayCreateBurst: 2000,
  maxCircuits: 100_000,
  circuitQueueCells: 1024,
  maxQueuedBytes: 256 * 1024 * 1024,
  channelPauseBytes: 8 * 1024 * 1024,
  stallMs: 10_000,
  extendTimeoutMs: 10_000,
} as const

export class RelayContext {
  readonly counters = new RelayCounters()
  readonly clock: Clock
  readonly routes = new RoutingTable()
  /** one circuit's work in order, circuits concurrently; bounded per circuit (§5.5) */
  readonly queue: KeyedQueue
  /** CREATE budgets (§5.5): per client address, and per listed relay (the larger) */
  readonly buckets: TokenBuckets
  readonly relayBuckets: TokenBuckets
  /** directory requests on one-hop circuits (§7.3), per client address: each answer is tens of cells for one */
  readonly directoryBuckets: TokenBuckets
  /** bytes of waiting cells per inbound channel id (backpressure) */
  readonly waitingFrom = new Map<string, number>()
  /** CREATEs between admission and their circuit's routing entry (counted against maxCircuits) */
  handshaking = 0
  /** bytes waiting in every queue of this relay (work queues and channels' send queues) */
  queuedBytes = 0
  /** called when queuedBytes passes the budget (relay-core: end the circuits with the oldest data) */
  overBudget: () => void = () => {}
  /** called when a CREATE found the circuit table full (relay-core: sweep entries the store has dropped) */
  tableFull: () => void = () => {}
  /** circuits ended here lately: their late cells are dropped without an answer */
  readonly ended: ExpiringTable<true>
  /** the §5.5 bounds, defaults filled in */
  readonly opt: { readonly [K in keyof typeof RELAY_DEFAULTS]: number }
  /** X25519 keys made ahead, so answering a CREATE imports none */
  readonly ephemerals = new EphemeralPool()
  /** every hop record is serialised into this one buffer: SessionStore.set copies it before returning */
  private readonly recordBuffer = Buffer.alloc(HOP_RECORD_SIZE)
  private listedOf: { c: Consensus, m: Map<string, Descriptor> } | null = null
  /**
   * The highest positions this process reserved per circuit (§4.1), by store key and
   * the circuit's keys: a record read back below them (an old copy put back in the
   * store) is refused, so this process never seals or opens at a position twice.
   */
  private readonly floors = new LRUCache<string, { tag: string, forward: number, backward: number }>({ max: 65_536 })
  shuttingDown = false

  constructor (readonly init: RelayCoreInit, readonly c: RelayCoreComponents, readonly channels: RelayChannelPool) {
    this.clock = c.clock ?? systemClock
    const d = RELAY_DEFAULTS
    this.opt = {
      relayCreateRate: init.relayCreateRate ?? d.relayCreateRate,
      relayCreateBurst: init.relayCreateBurst ?? d.relayCreateBurst,
      maxCircuits: init.maxCircuits ?? d.maxCircuits,
      circuitQueueCells: init.circuitQueueCells ?? d.circuitQueueCells,
      maxQueuedBytes: init.maxQueuedBytes ?? d.maxQueuedBytes,
      channelPauseBytes: init.channelPauseBytes ?? d.channelPauseBytes,
      stallMs: init.stallMs ?? d.stallMs,
      extendTimeoutMs: init.extendTimeoutMs ?? d.extendTimeoutMs,
    }
    this.buckets = new TokenBuckets(init.createRate, init.createBurst, 10_000, () => this.clock.now())
    this.relayBuckets = new TokenBuckets(this.opt.relayCreateRate, this.opt.relayCreateBurst, 10_000, () => this.clock.now())
    this.directoryBuckets = new TokenBuckets(DIRECTORY_REQUESTS.perSecond, DIRECTORY_REQUESTS.burst, 10_000, () => this.clock.now())
    this.ended = new ExpiringTable({ max: 65_536, ttlMs: 60_000, now: () => this.clock.now() })
    this.queue = new KeyedQueue({ maxPerKey: this.opt.circuitQueueCells, onBytes: (source, delta) => this.waited(source, delta) })
  }

  /** counts bytes into (or out of) the relay's queued total; checks the budget when it grows */
  account (delta: number): void {
    this.queuedBytes += delta
    if (delta > 0 && this.queuedBytes > this.opt.maxQueuedBytes) this.overBudget()
  }

  /** a refusal (src/error-codes.ts code), counted */
  refused (code: ErrorCode): void {
    this.counters.refusals[code] = (this.counters.refusals[code] ?? 0) + 1
  }

  /** the channel's waiting bytes changed: pause its reading above the bound, resume below half */
  private waited (source: string | undefined, delta: number): void {
    this.account(delta)
    if (source === undefined) return
    const n = (this.waitingFrom.get(source) ?? 0) + delta
    if (n <= 0) this.waitingFrom.delete(source)
    else this.waitingFrom.set(source, n)
    const ch = this.channels.byId(source)
    if (!ch) return
    if (n > this.opt.channelPauseBytes) ch.pauseReading()
    else if (n <= this.opt.channelPauseBytes / 2 && ch.readingPaused) ch.resumeReading()
  }

  get sessions (): SessionStore { return this.c.sessions }

  /** the hop (relay or server) listed with this fingerprint in the current consensus; one map per consensus */
  readonly listed = (fpHex: string): Descriptor | undefined => {
    const c = this.c.consensus()
    if (!c) return undefined
    if (this.listedOf?.c !== c) this.listedOf = { c, m: listedHops(c) }
    return this.listedOf.m.get(fpHex)
  }

  /**
   * The circuit's record with its version, to act on. A record older than one this
   * process reserved ends the circuit (DESTROY INTEGRITY) and throws MM_ERR_SESSION_STALE.
   */
  async load (key: string): Promise<LoadedHop | undefined> {
    const rec = await this.c.sessions.getVersioned(key)
    if (!rec) return undefined
    const hop = HopState.deserialize(rec.value)
    const floor = this.floors.get(key)
    if (floor && floor.tag === hop.keyTag && (hop.forward.position < floor.forward || hop.backward.position < floor.backward)) {
      endCircuit(this, key, HopError.INTEGRITY, 'MM_ERR_SESSION_STALE', hop)
      throw new MarshmelloError('MM_ERR_SESSION_STALE', 'the session store returned a circuit record older than one this relay wrote: the circuit ends')
    }
    return { hop, version: rec.version }
  }

  /** the record as stored, with no check: only to tear a circuit down */
  async peek (key: string): Promise<HopState | undefined> {
    const rec = await this.c.sessions.get(key)
    return rec ? HopState.deserialize(rec) : undefined
  }

  /** the hop's record, in a buffer reused for every record (the store copies it) */
  record (hop: HopState): Buffer { return hop.serialize(this.recordBuffer) }

  /**
   * Reserves what `l.hop` advanced (§4.1): writes its positions to the store
   * compare-and-set at the version it was read at, BEFORE anything opened or sealed at
   * those positions leaves this process. False when another write came first (another
   * process, or the circuit ended here meanwhile): then nothing may be sent.
   */
  async reserve (key: string, l: LoadedHop): Promise<boolean> {
    if (this.ended.get(key)) return false // ended meanwhile (§5.5): its record stays deleted
    const v = await this.c.sessions.compareAndSet(key, this.record(l.hop), l.version)
    if (v === 0) return false
    l.version = v
    this.floors.set(key, { tag: l.hop.keyTag, forward: l.hop.forward.position, backward: l.hop.backward.position })
    return true
  }

  /**
   * Runs `step` on the circuit's record and reserves what it advanced, retrying from a
   * fresh read when another process wrote first; then the actions may be sent.
   * undefined when the store holds no such circuit, null when it ended here; after
   * RESERVE_TRIES conflicts the circuit ends (MM_ERR_SESSION_CONFLICT) and null.
   * `save: false` steps changed nothing: no write.
   */
  async step<R extends { actions: MiddleHopAction[], save: boolean }> (key: string, step: (hop: HopState) => R): Promise<(R & { l: LoadedHop }) | null | undefined> {
    for (let i = 0; i < RESERVE_TRIES; i++) {
      const l = await this.load(key)
      if (!l) return i === 0 ? undefined : null
      if (this.ended.get(key)) return null
      const r = step(l.hop)
      if (!r.save || await this.reserve(key, l)) return { ...r, l }
      l.hop.wipe() // what it sealed never leaves
      if (this.ended.get(key)) return null
    }
    endCircuit(this, key, HopError.INTEGRITY, 'MM_ERR_SESSION_CONFLICT')
    return null
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
