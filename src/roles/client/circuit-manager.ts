// Keeps a client's circuits (docs/ARCHITECTURE.md): one current circuit, rotated after
// `rotateMs` (the old one lives on until its pending requests, such as a long-poll,
// finish), rebuilt on any failure with the request retried transparently (sends
// carry client message ids, so a retry is stored once), routing around the hop a
// failure blames. Which relay to enter through is the guard module's (circuits/guards.ts).
import type { Consensus } from '../../onion/directory/consensus.js'
import type { ApiRequest, ApiResponse } from '../../onion/streams/envelope.js'
import type { Logger } from '../../log.js'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { systemClock, type Clock } from '../common/clock.js'
import { ChannelPool, type Dial } from './circuits/channel-pool.js'
import { CircuitError } from './circuits/circuit-error.js'
import { Circuit } from './circuits/circuit.js'
import type { GuardPick, Guards } from './circuits/guards.js'
import { choosePath, fetchConsensus, type NetworkSettings, type PathChoice } from './network.js'

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

export interface HopView { nickname: string, role: string, fingerprint: string, host: string, port: number }

export class CircuitManager {
  private consensus: Consensus | null = null
  private currentCircuit: Circuit | null = null
  private building: Promise<Circuit> | null = null
  private readonly retiring = new Set<Circuit>()
  private readonly channels: ChannelPool
  private closed = false
  private readonly clock: Clock
  /** circuits built so far (for /circuit and tests) */
  built = 0

  constructor (private readonly init: CircuitManagerInit) {
    this.clock = init.clock ?? systemClock
    this.channels = new ChannelPool(init.localAddress, init.dial)
  }

  async refreshConsensus (): Promise<Consensus> {
    const relays = [...new Set([...this.init.network.relays, ...(this.consensus?.relays.map((r) => `https://${r.host}:${r.port}`) ?? [])])]
    this.consensus = await fetchConsensus(relays, this.init.network.directoryKey, this.init.localAddress, this.clock.now())
    return this.consensus
  }

  /** the entry (from the guard module) and a path through it */
  private async choose (exclude: Set<string>): Promise<{ pick: GuardPick, choice: PathChoice }> {
    const pick = await this.init.guards.pick(this.consensus!, exclude)
    return { pick, choice: choosePath(this.consensus!, { guard: pick.entry, exclude }) }
  }

  private async build (): Promise<Circuit> {
    if (!this.consensus || this.consensus.validUntil < this.clock.now() + 60_000) await this.refreshConsensus()
    const exclude = new Set<string>()
    let lastErr: Error | undefined
    let refreshed = false
    for (let attempt = 0; attempt < 4; attempt++) {
      let chosen: { pick: GuardPick, choice: PathChoice }
      try {
        chosen = await this.choose(exclude)
      } catch (err) {
        // our copy lists too few usable relays (it may predate relays that joined since):
        // fetch a fresh one, once per build, rather than fail until the copy expires
        if (refreshed) throw err
        refreshed = true
        await this.refreshConsensus()
        chosen = await this.choose(exclude)
      }
      const { pick, choice } = chosen
      await this.init.guards.adopt(pick)
      try {
        const c = await Circuit.build({ path: choice.path, channels: this.channels, timeoutMs: this.init.timeoutMs, clock: this.clock })
        this.built++
        await this.init.guards.succeeded(pick)
        return c
      } catch (err) {
        lastErr = err as Error
        const hop = err instanceof CircuitError ? err.hop : 0
        this.init.log.debug('circuit build failed', { hop, code: (err as any).code })
        if (hop === 1) {
          exclude.add(choice.guard)
          await this.init.guards.failed(pick)
        }
        if (hop >= 2 && hop <= choice.path.length - 1) exclude.add(choice.path[hop - 1].fingerprint)
        if (attempt === 1) await this.refreshConsensus().catch(() => {})
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
        if (!(err instanceof CircuitError) && !(isMarshmelloError(err) && err.kind === 'unavailable')) throw err
        this.init.log.debug('request failed on circuit; rebuilding', { code: (err as any).code })
        c.destroy()
        if (this.currentCircuit === c) this.currentCircuit = null
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
    for (const c of this.retiring) c.destroy()
    this.retiring.clear()
    await this.channels.close()
  }
}
