// Keeps a client's circuits (DESIGN §2, §7): one current circuit, rotated after
// `rotateMs` (the old one lives on until its pending requests, such as a long-poll,
// finish), rebuilt on any failure with the request retried transparently (sends
// carry client message ids, so a retry is stored once), and the entry guard kept
// in the profile and replaced after repeated failures.
import type { Consensus } from '../../onion/directory/consensus.js'
import type { ApiRequest, ApiResponse } from '../../onion/streams/envelope.js'
import type { Logger } from '../../log.js'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { Circuit, CircuitError, ChannelPool } from './circuit.js'
import { choosePath, fetchConsensus, type NetworkSettings, type PathChoice } from './network.js'

export interface GuardStore {
  load (): Promise<{ fingerprint: string, failures: number } | undefined>
  save (g: { fingerprint: string, failures: number } | undefined): Promise<void>
}

export interface CircuitManagerInit {
  network: NetworkSettings
  guard: GuardStore
  localAddress?: string
  rotateMs?: number
  timeoutMs?: number
  /** failures of the guard (as hop 1) before it is replaced */
  guardFailures?: number
  log: Logger
}

export interface HopView { nickname: string, role: string, fingerprint: string, host: string, port: number }

export class CircuitManager {
  private consensus: Consensus | null = null
  private currentCircuit: Circuit | null = null
  private building: Promise<Circuit> | null = null
  private readonly retiring = new Set<Circuit>()
  private readonly links: ChannelPool
  private closed = false
  /** circuits built so far (for /circuit and tests) */
  built = 0

  constructor (private readonly init: CircuitManagerInit) {
    this.links = new ChannelPool(init.localAddress)
  }

  async refreshConsensus (): Promise<Consensus> {
    const relays = [...new Set([...this.init.network.relays, ...(this.consensus?.relays.map((r) => `https://${r.host}:${r.port}`) ?? [])])]
    this.consensus = await fetchConsensus(relays, this.init.network.directoryKey, this.init.localAddress)
    return this.consensus
  }

  private async build (): Promise<Circuit> {
    if (!this.consensus || this.consensus.validUntil < Date.now() + 60_000) await this.refreshConsensus()
    const exclude = new Set<string>()
    let lastErr: Error | undefined
    let refreshed = false
    for (let attempt = 0; attempt < 4; attempt++) {
      const g = await this.init.guard.load()
      let choice: PathChoice
      try {
        choice = choosePath(this.consensus!, { guard: g?.fingerprint, exclude })
      } catch (err) {
        // our copy lists too few usable relays (it may predate relays that joined since):
        // fetch a fresh one, once per build, rather than fail until the copy expires
        if (refreshed) throw err
        refreshed = true
        await this.refreshConsensus()
        choice = choosePath(this.consensus!, { guard: g?.fingerprint, exclude })
      }
      // a new guard only when there is none or it left the consensus; while the kept guard
      // is excluded (it just failed), this build enters through another relay without
      // replacing it: a guard is replaced after repeated failures, not at the first one
      const keptListed = g !== undefined && this.consensus!.relays.some((r) => r.fingerprint === g.fingerprint)
      if (!keptListed) await this.init.guard.save({ fingerprint: choice.guard, failures: 0 })
      const entryIsGuard = !keptListed || choice.guard === g?.fingerprint
      try {
        const c = await Circuit.build({ path: choice.path, links: this.links, timeoutMs: this.init.timeoutMs })
        this.built++
        if (g && g.failures > 0 && g.fingerprint === choice.guard) await this.init.guard.save({ fingerprint: choice.guard, failures: 0 })
        return c
      } catch (err) {
        lastErr = err as Error
        const hop = err instanceof CircuitError ? err.hop : 0
        this.init.log.debug('circuit build failed', { hop, code: (err as any).code })
        if (hop === 1) {
          exclude.add(choice.guard)
          if (entryIsGuard) await this.guardFailed(choice.guard)
        }
        if (hop >= 2 && hop <= choice.path.length - 1) exclude.add(choice.path[hop - 1].fingerprint)
        if (attempt === 1) await this.refreshConsensus().catch(() => {})
      }
    }
    throw lastErr ?? new MarshmelloError('MM_ERR_CIRCUIT_BUILD', 'could not build a circuit')
  }

  private async guardFailed (fp: string): Promise<void> {
    const g = await this.init.guard.load()
    const failures = (g?.fingerprint === fp ? g.failures : 0) + 1
    // replaced after repeated failures, not at the first one (a guard that changes often helps an attacker)
    await this.init.guard.save(failures >= (this.init.guardFailures ?? 3) ? undefined : { fingerprint: fp, failures })
  }

  /** the circuit new requests use, built or rotated as needed */
  async current (): Promise<Circuit> {
    if (this.closed) throw new MarshmelloError('MM_ERR_CLOSED', 'client is closed')
    const c = this.currentCircuit
    if (c && !c.closed && Date.now() - c.createdAt < (this.init.rotateMs ?? 600_000)) return c
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
        await new Promise((r) => setTimeout(r, 300 * (i + 1)))
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
    await this.links.close()
  }
}
