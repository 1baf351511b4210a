// Keeps a client's circuits (docs/ARCHITECTURE.md): one current circuit, rotated after
// `rotateMs` (the old one lives on until its pending requests, such as a long-poll,
// finish), rebuilt on any failure with the request retried transparently (sends
// carry client message ids, so a retry is stored once), routing around a later hop only
// when a failure is evidence against it. Which relay to enter through, and what a failure
// counts for (reachability, path bias), is the guard module's (circuits/guards.ts); the
// consensus comes through the guard after bootstrap (PROTOCOL §7.3).
import { verifyConsensus, type Consensus } from '../../onion/directory/consensus.js'
import { DIRECTORY_PATH } from '../../onion/circuits/directory-cache.js'
import { judgeConsensus } from '../../onion/directory/freshness.js'
import type { ApiRequest, ApiResponse } from '../../onion/streams/envelope.js'
import type { Logger } from '../../log.js'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { systemClock, type Clock } from '../common/clock.js'
import { ChannelPool, type Dial } from './circuits/channel-pool.js'
import { CircuitError } from './circuits/circuit-error.js'
import { Circuit } from './circuits/circuit.js'
import type { GuardPick, Guards } from './circuits/guards.js'
import { choosePath, fetchConsensus, networkPin, type NetworkSettings, type PathChoice } from './network.js'

export interface CircuitManagerInit {
  network: NetworkSettings
  guards: Guards
  localAddress?: string
  rotateMs?: number
  timeoutMs?: number
  log: Logger
  /** time for rotation, timeouts and back-off (default: the system clock) */
  clock?: Clock
  /** how channels to entry relays are opened (default: WebSocket over TLS) */
  dial?: Dial
}

/**
 * `next` if it may replace `held`: a directory source (the guard) cannot take the client back
 * in time, so a document older than the one held is refused (MM_ERR_CONSENSUS_OLDER).
 */
export function newerConsensus (held: Consensus | null, next: Consensus): Consensus {
  if (held && next.validAfter < held.validAfter) throw new MarshmelloError('MM_ERR_CONSENSUS_OLDER', 'the guard served a consensus older than the one this client holds')
  return next
}

/** a failure of the circuit or of a hop behind it, which a new circuit may not have (retried); any other error is the answer */
const failedOnCircuit = (err: unknown): boolean => err instanceof CircuitError || (isMarshmelloError(err) && err.kind === 'unavailable')

export interface HopView { nickname: string, role: string, fingerprint: string, host: string, port: number }

export class CircuitManager {
  private consensus: Consensus | null = null
  private currentCircuit: Circuit | null = null
  private building: Promise<Circuit> | null = null
  private readonly retiring = new Set<Circuit>()
  /** the anonymous circuit (requestAnonymous), never used for a request with a token */
  private anonymous: Circuit | null = null
  private anonymousBuilding: Promise<Circuit> | null = null
  private readonly channels: ChannelPool
  private closed = false
  private readonly clock: Clock
  /** circuits built so far (for /circuit and tests) */
  built = 0
  /** the guard of every consensus fetch made through a guard, in order (for tests) */
  readonly directoryFetches: string[] = []

  constructor (private readonly init: CircuitManagerInit) {
    this.clock = init.clock ?? systemClock
    this.channels = new ChannelPool(init.localAddress, init.dial)
  }

  /**
   * A fresh consensus (PROTOCOL §7.3). After bootstrap it always comes through a guard: a
   * one-hop circuit to the guard the guard module picks (the same channel that carries the
   * client's circuits, so no other relay learns the client's address, and the guard learns
   * nothing it did not see already), asking `GET /consensus`. A guard that cannot be reached
   * or serves nothing valid or something older than what the client holds counts as
   * unreachable and the next guard in order is asked (guard-spec: the same guards serve
   * directory requests). Only before any consensus and with no guard kept in the profile
   * (the first run) does the client fetch it directly, from its configured bootstrap relays.
   */
  async refreshConsensus (): Promise<Consensus> {
    const held = this.consensus
    let last: Error | undefined
    // guards that refused our address this time (429): the next is asked, they are not failed
    const refused = new Set<string>()
    for (let attempt = 0; attempt < 3; attempt++) {
      const pick = held ? await this.init.guards.pick(held, refused) : await this.init.guards.stored(refused)
      if (!pick) {
        // every kept guard refused our address for now: wait, never bootstrap directly instead
        if (held || refused.size > 0) break
        return await this.adopt(await fetchConsensus(this.init.network.relays, networkPin(this.init.network), this.init.localAddress, this.clock.now()))
      }
      try {
        return await this.adopt(await this.fetchThroughGuard(pick, held))
      } catch (err) {
        last = err as Error
        this.init.log.debug('consensus fetch through the guard failed', { code: (err as any).code })
        // a guard that answered "too many requests from your address" (others behind it, NAT) is up: not its failure
        if ((err as any).code === 'MM_ERR_DIR_RATE') refused.add(pick.guard.fingerprint)
        else this.init.guards.connectFailed(pick)
      }
    }
    throw last ?? new MarshmelloError('MM_ERR_NO_GUARD', 'no guard to fetch the consensus through')
  }

  /** `GET /consensus` from the guard on a one-hop circuit (PROTOCOL §7.3); the guard that answered it is counted */
  private async fetchThroughGuard (pick: GuardPick, held: Consensus | null): Promise<Consensus> {
    this.directoryFetches.push(pick.guard.fingerprint)
    const c = await Circuit.build({ path: [pick.guard], channels: this.channels, timeoutMs: this.init.timeoutMs, clock: this.clock })
    try {
      const res = await c.request({ method: 'GET', path: DIRECTORY_PATH, headers: {}, body: Buffer.alloc(0) }, { timeoutMs: this.init.timeoutMs ?? 15_000 })
      if (res.status === 429) throw new MarshmelloError('MM_ERR_DIR_RATE', 'the guard is refusing directory requests from this address for now (too many lately)')
      if (res.status !== 200) throw new MarshmelloError('MM_ERR_NO_CONSENSUS', `the guard has no consensus to give (HTTP ${res.status})`)
      let doc: unknown
      try {
        doc = JSON.parse(res.body.toString('utf8'))
      } catch {
        throw new MarshmelloError('MM_ERR_CONSENSUS', 'the guard served a consensus that is not JSON')
      }
      return newerConsensus(held, verifyConsensus(doc, networkPin(this.init.network), this.clock.now()))
    } finally {
      c.destroy()
    }
  }

  /**
   * Takes `c` unless it goes back in time past the newest one this profile ever accepted
   * (a restart included: MM_ERR_CONSENSUS_OLDER, the source counts as failed) or, while the
   * held one is valid, drops most of its relays (kept back, and said: PROTOCOL §7.7).
   */
  private async adopt (c: Consensus): Promise<Consensus> {
    const held = this.consensus
    const verdict = judgeConsensus(held, c, await this.init.guards.newestValidAfter(), this.clock.now())
    if (!verdict.adopt) {
      if (verdict.code === 'MM_ERR_CONSENSUS_OLDER') throw new MarshmelloError(verdict.code, verdict.message)
      this.init.log.warn('consensus kept back', { code: verdict.code, reason: verdict.message })
      return held!
    }
    if (verdict.warning) this.init.log.warn('consensus shrank', { reason: verdict.warning })
    this.consensus = c
    await this.init.guards.observe(c)
    return c
  }

  private async build (): Promise<Circuit> {
    if (!this.consensus || this.consensus.validUntil < this.clock.now() + 60_000) await this.refreshConsensus()
    const exclude = new Set<string>()
    let lastErr: Error | undefined
    let refreshed = false
    for (let attempt = 0; attempt < 4; attempt++) {
      // the guard first: when none can be used, that error is the one the user sees (no other entry is tried)
      let pick = await this.init.guards.pick(this.consensus!)
      let choice: PathChoice
      try {
        choice = choosePath(this.consensus!, { guard: pick.guard.fingerprint, exclude })
      } catch (err) {
        // our copy lists too few usable relays (it may predate relays that joined since):
        // fetch a fresh one, once per build, rather than fail until the copy expires
        if (refreshed || (err as any).code !== 'MM_ERR_TOO_FEW_RELAYS') throw err
        refreshed = true
        await this.refreshConsensus()
        pick = await this.init.guards.pick(this.consensus!)
        choice = choosePath(this.consensus!, { guard: pick.guard.fingerprint, exclude })
      }
      try {
        const c = await Circuit.build({ path: choice.path, channels: this.channels, timeoutMs: this.init.timeoutMs, clock: this.clock })
        this.built++
        await this.init.guards.succeeded(pick, choice.path.length)
        return c
      } catch (err) {
        lastErr = err as Error
        const e = err instanceof CircuitError ? err : undefined
        this.init.log.debug('circuit build failed', { hop: e?.hop, at: e?.at, code: (err as any).code })
        if (e?.hop === 1) {
          // the guard did not answer as the first hop: unreachable until its retry time
          this.init.guards.connectFailed(pick)
          exclude.add(pick.guard.fingerprint)
        } else if (e !== undefined && e.at >= 2) {
          // the guard answered and the circuit failed past it: a path-bias attempt (path-spec §7)
          await this.init.guards.pathFailed(pick)
        }
        // a later hop is avoided (in this build only) when its failure is evidence against it;
        // a timeout or teardown past the guard blames no hop (client-build.ts)
        if (e !== undefined && e.hop >= 2 && e.hop <= choice.path.length - 1) exclude.add(choice.path[e.hop - 1].fingerprint)
        // a later hop shown to fail may have left the network since our copy: fetch a fresh one (once)
        if (e !== undefined && e.hop >= 2 && !refreshed) {
          refreshed = true
          await this.refreshConsensus().catch(() => {})
        }
      }
    }
    throw lastErr ?? new MarshmelloError('MM_ERR_CIRCUIT_BUILD', 'could not build a circuit')
  }

  /** the circuit new requests use, built or rotated as needed */
  async current (): Promise<Circuit> {
    if (this.closed) throw new MarshmelloError('MM_ERR_CLOSED', 'client is closed')
    const c = this.currentCircuit
    if (c && !c.closed && this.clock.now() - c.createdAt < (this.init.rotateMs ?? 600_000)) return c
    if (c && !c.closed) this.retire(c)
    if (!this.building) {
      this.building = this.build().then((n) => {
        this.currentCircuit = n
        n.on('closed', () => { if (this.currentCircuit === n) this.currentCircuit = null })
        return n
      }).finally(() => { this.building = null })
    }
    return this.building
  }

  private retire (c: Circuit): void {
    if (this.currentCircuit === c) this.currentCircuit = null
    this.retiring.add(c)
    this.sweep()
  }

  private sweep (): void {
    for (const c of this.retiring) {
      if (c.closed) this.retiring.delete(c)
      else if (c.pendingRequests === 0) { c.destroy(); this.retiring.delete(c) }
    }
  }

  /** a fresh circuit now (/newcircuit); pending requests on the old one finish */
  async newCircuit (): Promise<Circuit> {
    if (this.currentCircuit) this.retire(this.currentCircuit)
    return this.current()
  }

  /** the pinned directory authorities' fingerprints (hex, comma-separated; the server's first, also the trust root of sender certificates, PROTOCOL §12.2) */
  get directoryKey (): string { return this.init.network.directoryKey }

  /**
   * A request on the anonymous circuit: a second current circuit, rotated like the first,
   * that carries only requests without a token (sealed sends, the token key; PROTOCOL
   * §12.1), so the server can tie none of them to the account whose requests use the
   * signed-in circuit. Retried on a circuit failure on a new anonymous circuit.
   */
  async requestAnonymous (req: ApiRequest, opts: { timeoutMs?: number } = {}): Promise<ApiResponse> {
    if (this.closed) throw new MarshmelloError('MM_ERR_CLOSED', 'client is closed')
    let last: Error | undefined
    for (let i = 0; i < 3; i++) {
      let c = this.anonymous
      if (!c || c.closed || this.clock.now() - c.createdAt >= (this.init.rotateMs ?? 600_000)) {
        if (c && !c.closed) this.retire(c)
        this.anonymousBuilding ??= this.build().finally(() => { this.anonymousBuilding = null })
        c = this.anonymous = await this.anonymousBuilding
      }
      try {
        const res = await c.request(req, { timeoutMs: opts.timeoutMs ?? this.init.timeoutMs ?? 15_000 })
        this.sweep()
        return res
      } catch (err) {
        last = err as Error
        if (!failedOnCircuit(err)) throw err
        c.destroy()
        if (this.anonymous === c) this.anonymous = null
      }
    }
    throw last ?? new MarshmelloError('MM_ERR_REQUEST_FAILED', 'request failed')
  }

  /** sends a request, rebuilding the circuit and retrying on circuit failures */
  async request (req: ApiRequest, opts: { timeoutMs?: number, retries?: number } = {}): Promise<ApiResponse> {
    const retries = opts.retries ?? 3
    let last: Error | undefined
    for (let i = 0; i <= retries; i++) {
      let c: Circuit
      try {
        c = await this.current()
      } catch (err) {
        last = err as Error
        await this.clock.sleep(300 * (i + 1))
        continue
      }
      try {
        const res = await c.request(req, { timeoutMs: opts.timeoutMs ?? this.init.timeoutMs ?? 15_000 })
        this.sweep()
        return res
      } catch (err) {
        last = err as Error
        if (!failedOnCircuit(err)) throw err
        this.init.log.debug('request failed on circuit; rebuilding', { code: (err as any).code })
        c.destroy()
        if (this.currentCircuit === c) this.currentCircuit = null
      }
    }
    throw last ?? new MarshmelloError('MM_ERR_REQUEST_FAILED', 'request failed')
  }

  /**
   * One request on a circuit of its own, built for it and destroyed after: nothing else
   * travels on it, so the server cannot tie this request to the account whose requests use
   * the current circuit (a DM contact's prekey lookup, PROTOCOL §11.2). Retried once on a
   * circuit failure, on another fresh circuit.
   */
  async requestIsolated (req: ApiRequest, opts: { timeoutMs?: number } = {}): Promise<ApiResponse> {
    if (this.closed) throw new MarshmelloError('MM_ERR_CLOSED', 'client is closed')
    let last: Error | undefined
    for (let i = 0; i < 2; i++) {
      const c = await this.build()
      try {
        return await c.request(req, { timeoutMs: opts.timeoutMs ?? this.init.timeoutMs ?? 15_000 })
      } catch (err) {
        last = err as Error
        if (!failedOnCircuit(err)) throw err
      } finally {
        c.destroy()
      }
    }
    throw last ?? new MarshmelloError('MM_ERR_REQUEST_FAILED', 'request failed')
  }

  describe (): HopView[] {
    const c = this.currentCircuit
    if (!c) return []
    return c.path.map((d) => ({ nickname: d.nickname, role: d.role, fingerprint: d.fingerprint, host: d.host, port: d.port }))
  }

  async close (): Promise<void> {
    this.closed = true
    this.currentCircuit?.destroy()
    this.anonymous?.destroy()
    for (const c of this.retiring) c.destroy()
    this.retiring.clear()
    await this.channels.close()
  }
}
