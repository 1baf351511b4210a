// Where a relay gets its signed consensus: a file (`--consensus FILE`, re-read
// when it changes) or the directory (`--directory URL`, fetched periodically,
// and this relay's descriptor posted there). Either way the document is verified
// against the pinned directory key before it is used (P7).
import { readFile, stat } from 'node:fs/promises'
import { fetchDocument } from './signed-fetch.js'
import { verifyConsensus, type Consensus } from '../../onion/directory/consensus.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import type { Logger } from '../../log.js'
import { MarshmelloError } from '../../errors.js'

export interface ConsensusSourceInit {
  file?: string
  directory?: string
  directoryKey: string
  log: Logger
  /** this hop's descriptor, posted to the directory on every refresh (directory mode) */
  descriptor?: () => Descriptor
  refreshMs?: number
}

export class ConsensusSource {
  current: Consensus | null = null
  /** the signed document exactly as received, served to clients as a cached copy */
  raw: string | null = null
  private timer: NodeJS.Timeout | null = null
  private mtime = 0

  constructor (private readonly init: ConsensusSourceInit) {
    if (!init.file && !init.directory) throw new MarshmelloError('MM_ERR_CONFIG', 'a consensus needs --consensus FILE or --directory URL')
  }

  async start (): Promise<void> {
    await this.refresh().catch((err) => this.init.log.warn('consensus not loaded yet', { reason: (err as Error).message }))
    const every = this.init.refreshMs ?? (this.init.file ? 1000 : 5000)
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.init.log.warn('consensus refresh failed', { reason: (err as Error).message }))
    }, every)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer) clearInterval(this.timer)
  }

  async refresh (): Promise<void> {
    if (this.init.file) {
      const st = await stat(this.init.file)
      if (st.mtimeMs === this.mtime && this.current) return this.expireCheck()
      this.mtime = st.mtimeMs
      this.accept(await readFile(this.init.file, 'utf8'))
      return
    }
    const base = this.init.directory!.replace(/\/$/, '')
    if (this.init.descriptor) {
      const res = await fetchDocument(`${base}/v1/directory/descriptors`, { method: 'POST', json: this.init.descriptor() })
      if (res.status >= 300) this.init.log.warn('directory refused our descriptor', { status: res.status, reason: res.text.slice(0, 200) })
    }
    const res = await fetchDocument(`${base}/v1/directory/consensus`)
    if (res.status !== 200) throw new Error(`directory answered ${res.status}`)
    this.accept(res.text)
  }

  private accept (text: string): void {
    if (text.length > 4 * 1024 * 1024) throw new MarshmelloError('MM_ERR_CONSENSUS', 'consensus larger than 4 MiB')
    const doc = verifyConsensus(JSON.parse(text), this.init.directoryKey, Date.now())
    this.current = doc
    this.raw = text
  }

  private expireCheck (): void {
    if (this.current && this.current.validUntil < Date.now()) {
      this.current = null
      this.raw = null
    }
  }
}
