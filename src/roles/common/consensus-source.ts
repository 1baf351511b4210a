// Where a relay gets its signed consensus: a file (`--consensus FILE`, re-read
// when it changes) or the directory authorities (`--directory URL[,URL…]`: this relay's
// descriptor posted to every one, the consensus fetched periodically from one, the next
// when it fails). Either way the document is verified against the pinned authority keys
// and threshold before it is used (P7, PROTOCOL §7.8).
import { readFileSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { judgeConsensus } from '../../onion/directory/freshness.js'
import { writeSecretFile } from './identity.js'
import { fetchDocument } from './signed-fetch.js'
import { authorityPin, verifyConsensus, type AuthorityPin, type Consensus } from '../../onion/directory/consensus.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import type { Logger } from '../../log.js'
import { MarshmelloError } from '../../errors.js'
import { systemClock, type Clock, type Timer } from './clock.js'

export interface ConsensusSourceInit {
  file?: string
  /** the authorities' base URLs, comma-separated (each gets the descriptor; the consensus comes from any) */
  directory?: string
  /** pinned authority key fingerprints, comma-separated */
  directoryKey: string
  /** how many of them must sign (default: a majority) */
  directoryThreshold?: number
  log: Logger
  /** this hop's descriptor, posted to the directory on every refresh (directory mode) */
  descriptor?: () => Descriptor
  /** between refreshes once warm (default 5 s from a directory, 1 s from a file) */
  refreshMs?: number
  /** after start, refresh more often for this long (default 30 s) */
  warmupMs?: number
  /** how often while warming up or not listed (default 1 s) */
  warmupEveryMs?: number
  clock?: Clock
  /**
   * directory mode: where the newest validAfter accepted is kept across restarts
   * (PROTOCOL §7.7); without it, only for this process's life
   */
  stateFile?: string
}

export class ConsensusSource {
  current: Consensus | null = null
  /** the signed document exactly as received, served to clients as a cached copy */
  raw: string | null = null
  private timer: Timer | null = null
  private mtime = 0
  private startedAt = 0
  /** when the descriptor was last posted (directory mode) */
  private postedAt = 0
  private stopped = false
  /** the newest validAfter ever accepted from the directory (PROTOCOL §7.7) */
  private newestValidAfter = 0
  private readonly clock: Clock
  private readonly pin: AuthorityPin
  private readonly directories: string[]
  /** the authority the consensus is fetched from first (the next one after a failure) */
  private from = 0

  constructor (private readonly init: ConsensusSourceInit) {
    this.clock = init.clock ?? systemClock
    this.pin = authorityPin(init.directoryKey, init.directoryThreshold)
    this.directories = (init.directory ?? '').split(',').map((u) => u.trim().replace(/\/$/, '')).filter(Boolean).slice(0, 16)
    if (init.stateFile) {
      try {
        const v = (JSON.parse(readFileSync(init.stateFile, 'utf8')) as { newestValidAfter?: unknown }).newestValidAfter
        if (Number.isSafeInteger(v) && (v as number) > 0) this.newestValidAfter = v as number
      } catch { /* none kept yet */ }
    }
    if (!init.file && !init.directory) throw new MarshmelloError('MM_ERR_CONFIG', 'a consensus needs --consensus FILE or --directory URL')
  }

  async start (): Promise<void> {
    this.startedAt = this.clock.now()
    await this.tick()
  }

  stop (): void {
    this.stopped = true
    this.timer?.cancel()
    this.timer = null
  }

  /**
   * One refresh, then the next one scheduled: every `refreshMs` (5 s from a directory,
   * 1 s from a file), but every `warmupEveryMs` (1 s) during the first `warmupMs`
   * (30 s) after start, and while this hop is not yet in the consensus it holds. A
   * hop that has just started learns of the hops that started beside it within a
   * second instead of a whole heartbeat later, and one whose first post failed (the
   * directory not up yet, a probe that timed out) posts again a second later. The
   * descriptor is posted at most every `refreshMs` once listed (heartbeats, as before).
   */
  private async tick (): Promise<void> {
    await this.refresh().catch((err) => {
      this.init.log.warn(this.current ? 'consensus refresh failed' : 'consensus not loaded yet', { reason: (err as Error).message })
    })
    if (this.stopped) return
    const every = this.init.refreshMs ?? (this.init.file ? 1000 : 5000)
    const warm = this.clock.now() - this.startedAt < (this.init.warmupMs ?? 30_000) || !this.listed()
    this.timer = this.clock.setTimeout(() => { void this.tick() }, warm ? Math.min(every, this.init.warmupEveryMs ?? 1000) : every)
  }

  /** directory mode: the consensus held lists this hop (file mode: always true) */
  private listed (): boolean {
    if (!this.init.descriptor) return this.current !== null
    if (!this.current) return false
    const me = this.init.descriptor()
    const listed = me.role === 'server' ? this.current.server : this.current.relays.find((r) => r.fingerprint === me.fingerprint)
    return listed?.fingerprint === me.fingerprint
  }

  async refresh (): Promise<void> {
    if (this.init.file) {
      const st = await stat(this.init.file)
      if (st.mtimeMs === this.mtime && this.current) return this.expireCheck()
      this.mtime = st.mtimeMs
      this.accept(await readFile(this.init.file, 'utf8'))
      return
    }
    if (this.init.descriptor && (!this.listed() || this.clock.now() - this.postedAt >= (this.init.refreshMs ?? 5000))) {
      this.postedAt = this.clock.now()
      // the same signed descriptor to every authority: each votes on what it finds (PROTOCOL §7.8)
      const d = this.init.descriptor()
      await Promise.all(this.directories.map(async (base) => {
        try {
          const res = await fetchDocument(`${base}/v1/directory/descriptors`, { method: 'POST', json: d })
          if (res.status >= 300) this.init.log.warn('directory refused our descriptor', { directory: base, status: res.status, reason: res.text.slice(0, 200) })
        } catch (err) {
          this.init.log.warn('directory not reachable', { directory: base, reason: (err as Error).message })
        }
      }))
    }
    let last: Error = new Error('no directory given')
    const first = this.from
    for (let i = 0; i < this.directories.length; i++) {
      const at = (first + i) % this.directories.length
      const base = this.directories[at]!
      try {
        const res = await fetchDocument(`${base}/v1/directory/consensus`)
        if (res.status !== 200) throw new Error(`directory ${base} answered ${res.status}`)
        this.accept(res.text)
        this.from = at // asked first next time
        return
      } catch (err) {
        last = err as Error
      }
    }
    this.from = (first + 1) % Math.max(1, this.directories.length)
    throw last
  }

  private accept (text: string): void {
    if (text.length > 4 * 1024 * 1024) throw new MarshmelloError('MM_ERR_CONSENSUS', 'consensus larger than 4 MiB')
    const doc = verifyConsensus(JSON.parse(text), this.pin, this.clock.now())
    if (this.init.directory) {
      // a consensus file is the operator's own; the directory's answers are judged (PROTOCOL §7.7)
      const verdict = judgeConsensus(this.current, doc, this.newestValidAfter, this.clock.now())
      if (!verdict.adopt) throw new MarshmelloError(verdict.code, verdict.message) // logged by tick(); the held one stays
      if (verdict.warning) this.init.log.warn('consensus shrank', { reason: verdict.warning })
      if (verdict.newestValidAfter > this.newestValidAfter) {
        this.newestValidAfter = verdict.newestValidAfter
        if (this.init.stateFile) writeSecretFile(this.init.stateFile, JSON.stringify({ newestValidAfter: this.newestValidAfter }) + '\n')
      }
    }
    this.current = doc
    this.raw = text
  }

  private expireCheck (): void {
    if (this.current && this.current.validUntil < this.clock.now()) {
      this.current = null
      this.raw = null
    }
  }
}
