// The client's sealed-sender state and requests (docs/PROTOCOL.md §12): its access key
// (made once, given to contacts inside every sealed DM) and its verifier at the server,
// the contacts' access keys it learned from their DMs, a sender certificate fetched at
// login, a wallet of anonymous Privacy Pass tokens (fetched in batches on the signed-in
// circuit, spent on the anonymous one). The DMs themselves, opened and sent, are kept in
// the one local history, beside the sessions (profile/dm-state.ts). All of this lives in
// profiles/<me>/sealed.json, sealed with AES-256-GCM under a key derived from the
// profile's private keys (never in clear on disk). Leaves the inner DM bytes to the
// session layer and the UI to chat-client.ts.

import { join } from 'node:path'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { aesGcmOpen, aesGcmSeal, hkdfSha256, randomBytes, sha256 } from '../../onion/crypto/primitives.js'
import { issuerKeyId, requestTokens } from '../../onion/crypto/privacy-pass.js'
import { ACCESS_KEY_BYTES } from '../../onion/sealed/delivery-token.js'
import { verifySenderCertificate } from '../../onion/sealed/sender-certificate.js'
import type { Identity } from './e2e/keys.js'
import { accessVerifier, deliveryTokenFor, openSealed, sealFor, type OpenedSealed } from './e2e/sealed.js'
import { corrupt, ensureProfileDir, isObject, profileDir, readJson, serialized, writeFileAtomic } from './profile/files.js'

export const SEALED_STATE_FILE = 'sealed.json'
/** tokens asked for at once, and the wallet level below which a login tops it up */
const TOKEN_BATCH = 5
const TOKEN_LOW = 1
const STATE_INFO = Buffer.from('marshmello/profile/sealed-state/v1', 'utf8')

export interface LoggedDm { id: string, from: string, to: string, text: string, sentAt: number }

interface State {
  accessKey: string
  allowStrangers: boolean
  /** contact → its access key (base64) */
  contacts: Record<string, string>
  tokens: { token: string, keyId: string, validUntil: number }[]
  /** before the one history (profile/dm-state.ts): the DM log, moved there at the next login */
  log?: LoggedDm[]
  /** the last sender certificate (base64) and its expiry, reused by the next process while fresh */
  certificate?: { bytes: string, expires: number }
  /** the verifier and setting the server last confirmed, so a login sends them only when they change */
  confirmed?: string
}

export interface SealedSenderInit {
  home: string | undefined
  me: string
  identity: Identity
  /** the pinned directory key fingerprint (hex): the certificates' trust root */
  pinnedRoot: string
  /** an API call on the signed-in circuit (with the token) */
  call: (method: string, path: string, body?: unknown) => Promise<any>
  /** an API call on the anonymous circuit (no token) */
  anonymous: (method: string, path: string, body?: unknown) => Promise<any>
  now?: () => number
}

const stateKey = (identity: Identity): Buffer => hkdfSha256(Buffer.concat([identity.enc.privateKey, identity.sign.privateKey]), Buffer.alloc(0), STATE_INFO, 32)

export class SealedSender {
  private certificate: { bytes: Buffer, expires: number } | undefined
  /** envelopes already sealed, by the inner bytes' digest: a retried send sends the same bytes (stored once) */
  private readonly sealedCache = new Map<string, string>()

  private constructor (private readonly init: SealedSenderInit, private state: State, private readonly file: string) {}

  private get now (): number { return (this.init.now ?? Date.now)() }

  /** loads (or makes) the state, fetches a certificate, tells the server the verifier and setting, tops up tokens */
  static async start (init: SealedSenderInit): Promise<SealedSender> {
    const file = join(profileDir(init.home, init.me), SEALED_STATE_FILE)
    const state = await load(file, init.identity, init.me) ?? { accessKey: randomBytes(ACCESS_KEY_BYTES).toString('base64'), allowStrangers: true, contacts: {}, tokens: [] }
    const s = new SealedSender(init, state, file)
    if (state.certificate !== undefined) {
      const bytes = Buffer.from(state.certificate.bytes, 'base64')
      try {
        // still ours, under the root pinned now (a new network has another directory key)
        const c = verifySenderCertificate(bytes, init.pinnedRoot, s.now)
        if (c.username === init.me && c.identityKey.equals(init.identity.enc.publicKey)) s.certificate = { bytes, expires: c.expires }
      } catch { /* fetched anew below */ }
    }
    await s.refreshCertificate()
    await s.confirmSettings()
    // fetched at login, long before a stranger send spends one (no timing join, PROTOCOL §12.5)
    await s.topUpTokens().catch(() => { /* a stranger send fetches them again */ })
    await s.save()
    return s
  }

  /** the server holds our verifier and setting (sent again only when they changed, or the server forgot them) */
  private async confirmSettings (): Promise<void> {
    const verifier = accessVerifier(Buffer.from(this.state.accessKey, 'base64'))
    const want = `${verifier} ${this.state.allowStrangers}`
    if (this.state.confirmed === want) return
    await this.init.call('PUT', '/v1/dms/settings', { verifier, allowStrangers: this.state.allowStrangers })
    this.state.confirmed = want
  }

  get allowStrangers (): boolean { return this.state.allowStrangers }

  /** whether strangers (senders without our access key) may send us sealed first messages */
  async setAllowStrangers (allow: boolean): Promise<void> {
    this.state.allowStrangers = allow
    await this.confirmSettings()
    await this.save()
  }

  private async refreshCertificate (): Promise<Buffer> {
    if (this.certificate && this.certificate.expires - this.now > 10 * 60_000) return this.certificate.bytes
    const data = await this.init.call('POST', '/v1/dms/certificate')
    const bytes = Buffer.from(String(data?.certificate ?? ''), 'base64')
    // the server's certificate for us must check out as a recipient will check it
    const c = verifySenderCertificate(bytes, this.init.pinnedRoot, this.now)
    if (c.username !== this.init.me || !c.identityKey.equals(this.init.identity.enc.publicKey)) {
      throw new MarshmelloError('MM_ERR_SENDER_CERT', 'the server issued a sender certificate for another name or key')
    }
    this.certificate = { bytes, expires: c.expires }
    this.state.certificate = { bytes: bytes.toString('base64'), expires: c.expires }
    return bytes
  }

  /** RFC 9578 issuance: the key fetched anonymously (the same for everyone), the batch on the signed-in circuit */
  private async topUpTokens (): Promise<void> {
    this.state.tokens = this.state.tokens.filter((t) => t.validUntil > this.now + 60_000)
    if (this.state.tokens.length >= TOKEN_LOW) return
    const key = await this.init.anonymous('GET', '/v1/dms/token-key')
    const publicKey = Buffer.from(String(key.publicKey), 'base64')
    const keyId = issuerKeyId(publicKey).toString('base64')
    if (keyId !== key.keyId) throw new MarshmelloError('MM_ERR_ANON_TOKEN', 'the token key does not match its id')
    const batch = await requestTokens(publicKey, TOKEN_BATCH)
    const issued = await this.init.call('POST', '/v1/dms/tokens', { requests: batch.requests.map((r) => r.toString('base64')) })
    const tokens = await batch.finish((issued.responses as string[]).map((r) => Buffer.from(r, 'base64')))
    for (const t of tokens) this.state.tokens.push({ token: t.toString('base64url'), keyId, validUntil: Number(key.validUntil) })
    await this.save()
  }

  /**
   * Seals `inner` for `peer` (identity key `recipientIdentity`, base64) and sends it on the
   * anonymous circuit: with the peer's delivery token when we have its access key, else
   * (a first message) with an anonymous token. Returns the server's id.
   */
  async send (peer: string, recipientIdentity: string, inner: Buffer): Promise<{ id: string }> {
    const digest = sha256(Buffer.from(peer), inner).toString('base64url')
    let envelope = this.sealedCache.get(digest)
    if (envelope === undefined) {
      envelope = sealFor({
        recipientIdentity: Buffer.from(recipientIdentity, 'base64'),
        senderIdentityPrivate: this.init.identity.enc.privateKey,
        senderCertificate: await this.refreshCertificate(),
        accessKey: Buffer.from(this.state.accessKey, 'base64'),
        inner,
      })
      if (this.sealedCache.size >= 200) this.sealedCache.delete(this.sealedCache.keys().next().value!)
      this.sealedCache.set(digest, envelope)
    }
    const known = this.state.contacts[peer]
    if (known !== undefined) {
      try {
        const res = await this.init.anonymous('POST', '/v1/dms/sealed', { to: peer, envelope, deliveryToken: deliveryTokenFor(Buffer.from(known, 'base64')) })
        this.sealedCache.delete(digest)
        return { id: res.id }
      } catch (err) {
        if (!(isMarshmelloError(err) && err.code === 'MM_ERR_DELIVERY_TOKEN')) throw err
        delete this.state.contacts[peer] // the peer changed its access key: write as a stranger until it answers
      }
    }
    const res = await this.spendToken((anonToken) => this.init.anonymous('POST', '/v1/dms/sealed', { to: peer, envelope, anonToken }))
    this.sealedCache.delete(digest)
    return { id: res.id }
  }

  private async spendToken<T> (use: (token: string) => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.topUpTokens()
      const t = this.state.tokens.shift()!
      await this.save() // spent before it is sent: never offered twice for two messages
      try {
        return await use(t.token)
      } catch (err) {
        // a key that rotated away (a server restart): fetch new tokens and try again
        if (isMarshmelloError(err) && err.code === 'MM_ERR_ANON_TOKEN') { this.state.tokens = []; continue }
        throw err
      }
    }
    throw new MarshmelloError('MM_ERR_ANON_TOKEN', 'the server refused every anonymous token; try again later')
  }

  /** Opens a stored sealed DM (throws MM_ERR_SEALED / MM_ERR_SENDER_CERT); remembers the sender's access key. */
  async open (body: string): Promise<OpenedSealed> {
    const o = openSealed(body, { myIdentityPrivate: this.init.identity.enc.privateKey, pinnedRoot: this.init.pinnedRoot, now: this.now })
    const ak = o.accessKey?.toString('base64')
    if (ak !== undefined && this.state.contacts[o.sender] !== ak && o.sender !== this.init.me) {
      this.state.contacts[o.sender] = ak
      await this.save()
    }
    return o
  }

  /** the DM log an earlier version kept here (empty once moved to the one history) */
  get legacyLog (): readonly LoggedDm[] { return this.state.log ?? [] }

  /** forgets the earlier version's DM log, once the one history holds it on disk */
  async dropLegacyLog (): Promise<void> {
    if (this.state.log === undefined) return
    delete this.state.log
    await this.save()
  }

  /** the server deletes these DMs to us: they are in the local history (profile/dm-state.ts) (PROTOCOL §12.6) */
  async ack (ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 200) await this.init.call('POST', '/v1/dms/ack', { ids: ids.slice(i, i + 200) })
  }

  private async save (): Promise<void> {
    await writeState(this.file, this.init.home, this.init.identity, this.init.me, this.state)
  }
}

async function writeState (file: string, home: string | undefined, identity: Identity, me: string, state: State): Promise<void> {
  const key = stateKey(identity)
  const nonce = randomBytes(12)
  const sealed = aesGcmSeal(key, nonce, Buffer.from(JSON.stringify(state)), Buffer.from(me))
  key.fill(0)
  await serialized(file, async () => {
    await ensureProfileDir(home, me)
    await writeFileAtomic(file, JSON.stringify({ v: 1, nonce: nonce.toString('base64'), sealed: sealed.toString('base64') }) + '\n')
  })
}

/** the sealed-sender state of `me` as on disk (tests: an earlier version's profile), undefined without one */
export async function readSealedState (home: string | undefined, me: string, identity: Identity): Promise<Record<string, unknown> | undefined> {
  return await load(join(profileDir(home, me), SEALED_STATE_FILE), identity, me) as Record<string, unknown> | undefined
}

/** replaces the sealed-sender state of `me` on disk (tests: an earlier version's profile) */
export async function writeSealedState (home: string | undefined, me: string, identity: Identity, state: Record<string, unknown>): Promise<void> {
  await writeState(join(profileDir(home, me), SEALED_STATE_FILE), home, identity, me, state as unknown as State)
}

async function load (file: string, identity: Identity, me: string): Promise<State | undefined> {
  const raw = await readJson(file)
  if (raw === undefined) return undefined
  if (!isObject(raw) || raw.v !== 1 || typeof raw.nonce !== 'string' || typeof raw.sealed !== 'string') throw corrupt(file, 'not sealed-sender state')
  const key = stateKey(identity)
  const plain = aesGcmOpen(key, Buffer.from(raw.nonce, 'base64'), Buffer.from(raw.sealed, 'base64'), Buffer.from(me))
  key.fill(0)
  if (plain === null) throw corrupt(file, 'does not open with this profile\'s keys')
  const s = JSON.parse(plain.toString('utf8')) as State
  if (!isObject(s) || typeof s.accessKey !== 'string' || (s.log !== undefined && !Array.isArray(s.log)) || !Array.isArray(s.tokens) || !isObject(s.contacts)) throw corrupt(file, 'not sealed-sender state')
  return s
}
