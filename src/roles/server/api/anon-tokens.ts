// Anonymous tokens for sealed sends (docs/PROTOCOL.md §12.5): Privacy Pass (RFC 9578,
// publicly verifiable type 0x0002) issued in batches to signed-in accounts and redeemed
// on sealed sends that carry no delivery token. The issuer key changes every epoch
// (default 24 h, on the injected Clock); a token of the current or the previous epoch is
// accepted once: its nonce goes into that epoch's double-spend set, which is bounded
// and dropped with its epoch (RFC 9578 §7.2 double-spend prevention, RFC 9576 §3.4.2
// key rotation). Issuance knows the account; redemption knows only the token, and the
// blind signature (RFC 9474) leaves nothing to join them on. Keys live in memory: a
// restart starts a new epoch and clients fetch new tokens.

import { LRUCache } from 'lru-cache'
import { MarshmelloError } from '../../../errors.js'
import { generateIssuerKey, type IssuerKey } from '../../../onion/crypto/privacy-pass.js'
import type { Clock } from '../../common/clock.js'

export interface AnonTokensInit {
  /** key epoch; default 24 h */
  epochMs?: number
  /** tokens one account may get per epoch; default 50 */
  perAccount?: number
  /** token requests in one issuance; default 10 */
  maxBatch?: number
  /** spent nonces held per epoch before redemption refuses (503); default 1,000,000 */
  maxSpent?: number
}

interface Epoch {
  n: number
  key: IssuerKey
  /** nonce (hex) → digest of the message it paid for, so a retried send is not a double spend */
  spent: Map<string, string>
}

/** Thrown when an account asks for more tokens than its budget. */
const overBudget = (n: number) => new MarshmelloError('MM_ERR_ANON_TOKEN_BUDGET', `an account gets at most ${n} anonymous tokens per key epoch; wait for the next`)

export class AnonTokens {
  private readonly epochMs: number
  private readonly perAccount: number
  readonly maxBatch: number
  private readonly maxSpent: number
  private current: Promise<Epoch> | undefined
  private previous: Epoch | undefined
  /** tokens issued per account in the current epoch (counts, never which tokens) */
  private readonly issued = new LRUCache<string, { epoch: number, count: number }>({ max: 100_000 })
  /** counters for /metrics */
  readonly stats = { issued: 0, redeemed: 0, refused: 0 }

  constructor (init: AnonTokensInit, private readonly clock: Clock) {
    this.epochMs = init.epochMs ?? 24 * 3600_000
    this.perAccount = init.perAccount ?? 50
    this.maxBatch = init.maxBatch ?? 10
    this.maxSpent = init.maxSpent ?? 1_000_000
  }

  private epochNumber (): number { return Math.floor(this.clock.now() / this.epochMs) }

  /** the current epoch's key, rotating when the epoch changed */
  private async epoch (): Promise<Epoch> {
    const n = this.epochNumber()
    const p = this.current
    const cur = p === undefined ? undefined : await p
    if (cur !== undefined && cur.n === n) return cur
    if (this.current !== p) return this.epoch() // another call rotated meanwhile
    // rotate: the old key stays good for one more epoch (tokens fetched just before the change)
    this.previous = cur !== undefined && cur.n === n - 1 ? cur : undefined
    const next = generateIssuerKey().then((key) => ({ n, key, spent: new Map<string, string>() }))
    this.current = next
    return next
  }

  async publicKey (): Promise<{ keyId: Buffer, publicKey: Buffer, epoch: number, validUntil: number }> {
    const e = await this.epoch()
    return { keyId: e.key.keyId, publicKey: e.key.publicKey, epoch: e.n, validUntil: (e.n + 2) * this.epochMs }
  }

  /** RFC 9578 §6.2 for each request, within the account's budget (which is spent first) */
  async issue (account: string, requests: Buffer[]): Promise<Buffer[]> {
    if (requests.length < 1 || requests.length > this.maxBatch) throw new MarshmelloError('MM_ERR_ANON_TOKEN_BUDGET', `ask for 1 to ${this.maxBatch} tokens at once`)
    const e = await this.epoch()
    const had = this.issued.get(account)
    const used = had !== undefined && had.epoch === e.n ? had.count : 0
    if (used + requests.length > this.perAccount) throw overBudget(this.perAccount)
    this.issued.set(account, { epoch: e.n, count: used + requests.length })
    const out: Buffer[] = []
    for (const r of requests) out.push(await e.key.issue(r))
    this.stats.issued += out.length
    return out
  }

  /**
   * Spends a token on the message with `digest`. The same token with the same digest
   * again is a retry and passes; with another digest it is a double spend.
   */
  async redeem (token: Buffer, digest: string): Promise<void> {
    const cur = await this.epoch()
    for (const e of [cur, this.previous]) {
      if (e === undefined || e.n < cur.n - 1) continue
      const ok = await e.key.verify(token)
      if (ok === null) continue
      const nonce = ok.nonce.toString('hex')
      const before = e.spent.get(nonce)
      if (before !== undefined) {
        if (before === digest) return
        this.stats.refused++
        /** Thrown when a token is redeemed a second time. */
        throw new MarshmelloError('MM_ERR_ANON_TOKEN_SPENT', 'this anonymous token was already spent')
      }
      if (e.spent.size >= this.maxSpent) throw new MarshmelloError('MM_ERR_ANON_STORE_FULL', 'the server holds as many spent tokens as it can this epoch; try again later')
      e.spent.set(nonce, digest)
      this.stats.redeemed++
      return
    }
    this.stats.refused++
    /** Thrown when a token does not verify under the current or previous epoch's key. */
    throw new MarshmelloError('MM_ERR_ANON_TOKEN', 'the anonymous token does not verify (another key or epoch, or altered)')
  }
}
