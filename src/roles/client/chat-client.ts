// The client core shared by the terminal UI, the web UI and the scripting
// commands: account (register, login, logout), rooms, end-to-end encrypted DMs
// (sealed to the recipient's key, signed by the sender, P8) with trust on first
// use of contacts' keys, all as API calls through the circuit manager. Nothing
// here prints; callers decide what to show.
import { randomBase64url } from '../../onion/crypto/random.js'
import { MarshmelloError, isErrorCode } from '../../errors.js'
import type { UserKeys } from '../../storage/types.js'
import type { CircuitManager } from './circuit-manager.js'
import { generateIdentity, publicKeys, keyFingerprint, type Identity } from './e2e/keys.js'
import { openDm, sealDm } from './e2e/dm.js'
import { decodeEnvelope } from './e2e/envelope.js'
import { createProfile, profileExists, unlockProfile } from './profile/identity.js'
import { acceptContactKey, checkContact } from './profile/contacts.js'

export interface ChatMessage {
  id: string
  from: string
  room?: string
  to?: string
  text: string | null
  sentAt: number
  /** DMs only: signature and decryption checked against the sender's pinned key */
  verified?: boolean
  /** DMs only: why a DM is not verified, or that the contact's key changed */
  warning?: string
}

interface WireMessage { id: string, from: string, room?: string, to?: string, clientId: string, body: string, sentAt: number }

export interface Page { messages: ChatMessage[], cursor?: string }

export interface ReadOptions {
  /** messages after this id */
  after?: string
  /** long-poll up to this many seconds when nothing is new */
  wait?: number
  limit?: number
  /** the newest page (joining a room), not with after or wait */
  latest?: boolean
}

/** Thrown when a contact's key differs from the one pinned on first use. */
export class KeyChangedError extends MarshmelloError {
  constructor (readonly username: string, readonly oldFingerprint: string, readonly newFingerprint: string) {
    super('MM_ERR_KEY_CHANGED', `WARNING: ${username}'s key changed (was ${oldFingerprint.slice(0, 16)}…, now ${newFingerprint.slice(0, 16)}…); verify it with them, then trust it with /trust ${username}`,
      { details: { username, oldFingerprint, newFingerprint } })
  }
}

export const newClientId = (): string => randomBase64url(12)

export class ChatClient {
  username: string | null = null
  private token: string | null = null
  private identity: Identity | null = null
  private readonly keyCache = new Map<string, UserKeys>()

  constructor (readonly home: string | undefined, readonly circuits: CircuitManager) {}

  /** one API call through the onion; throws MarshmelloError with the server's code on 4xx/5xx */
  async call<T = any> (method: string, path: string, body?: unknown, opts: { timeoutMs?: number, auth?: boolean } = {}): Promise<{ status: number, data: T }> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (opts.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`
    const res = await this.circuits.request({ method, path, headers, body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)) }, { timeoutMs: opts.timeoutMs })
    let data: any = null
    if (res.body.length) {
      try { data = JSON.parse(res.body.toString('utf8')) } catch { data = null }
    }
    if (res.status >= 400) {
      const e = data?.error
      // the server's code carries its kind and status (one registry); an unknown one is MM_ERR_HTTP
      throw new MarshmelloError(isErrorCode(e?.code) ? e.code : 'MM_ERR_HTTP', e?.message ?? `server answered ${res.status}`)
    }
    return { status: res.status, data }
  }

  /** creates the profile (keys encrypted with the password) and the account */
  async register (username: string, password: string): Promise<void> {
    const name = username.toLowerCase()
    if (await profileExists(this.home, name)) {
      // a profile without an account (an earlier attempt failed mid-way) is reused
      this.identity = await unlockProfile(this.home, name, password)
    } else {
      this.identity = generateIdentity()
      await createProfile(this.home, name, password, this.identity)
    }
    try {
      await this.call('POST', '/v1/auth/register', { username: name, password, keys: publicKeys(this.identity) }, { auth: false })
    } catch (err) {
      if ((err as MarshmelloError).code === 'MM_ERR_USER_EXISTS') {
        throw new MarshmelloError('MM_ERR_USER_EXISTS', `the name ${name} is taken; choose another or log in`)
      }
      throw err
    }
    this.username = name
  }

  async login (username: string, password: string): Promise<void> {
    const name = username.toLowerCase()
    if (!(await profileExists(this.home, name))) {
      throw new MarshmelloError('MM_ERR_PROFILE_UNKNOWN', `no profile for ${name} in this home; register first (marshmello register --user ${name}) or use --home`)
    }
    const identity = await unlockProfile(this.home, name, password)
    const { data } = await this.call('POST', '/v1/auth/login', { username: name, password }, { auth: false })
    this.token = data.token
    this.username = name
    this.identity = identity
    const mine = publicKeys(identity)
    const server = await this.call('GET', '/v1/users/me/keys')
    if (!server.data.keys || server.data.keys.enc !== mine.enc || server.data.keys.sign !== mine.sign) {
      await this.call('PUT', '/v1/users/me/keys', mine)
    }
  }

  async logout (): Promise<void> {
    if (this.token) await this.call('POST', '/v1/auth/logout').catch(() => {})
    this.token = null
    this.identity = null
    this.username = null
  }

  private me (): { name: string, identity: Identity } {
    if (!this.username || !this.identity || !this.token) throw new MarshmelloError('MM_ERR_NOT_LOGGED_IN', 'log in first')
    return { name: this.username, identity: this.identity }
  }

  async sendRoom (room: string, text: string, clientId = newClientId()): Promise<ChatMessage> {
    this.me()
    const { data } = await this.call('POST', `/v1/rooms/${encodeURIComponent(room.toLowerCase())}/messages`, { clientId, text })
    return this.show(data.message)
  }

  /** a page after `after` (long-polling `wait` seconds), or with `latest` the room's newest page */
  async readRoom (room: string, opts: ReadOptions = {}): Promise<Page> {
    this.me()
    const q = new URLSearchParams()
    if (opts.latest) q.set('latest', '1')
    if (opts.after) q.set('after', opts.after)
    if (opts.limit) q.set('limit', String(opts.limit))
    if (opts.wait) q.set('wait', String(opts.wait))
    const { data } = await this.call('GET', `/v1/rooms/${encodeURIComponent(room.toLowerCase())}/messages${q.size ? '?' + q : ''}`, undefined, { timeoutMs: ((opts.wait ?? 0) + 15) * 1000 })
    return { messages: (data.messages as WireMessage[]).map((m) => this.show(m)), cursor: data.cursor ?? opts.after }
  }

  private show (m: WireMessage): ChatMessage {
    return { id: m.id, from: m.from, room: m.room, text: m.body, sentAt: m.sentAt }
  }

  /** a user's public keys from the server, checked against the pinned ones (TOFU) */
  async contactKeys (username: string, opts: { allowChanged?: boolean } = {}): Promise<{ keys: UserKeys, fingerprint: string, status: 'new' | 'same' | 'changed' }> {
    const { name } = this.me()
    const user = username.toLowerCase()
    const { data } = await this.call('GET', `/v1/users/${encodeURIComponent(user)}/keys`)
    if (!data.keys) throw new MarshmelloError('MM_ERR_NO_KEYS', `${user} has no end-to-end keys yet`)
    const keys = data.keys as UserKeys
    const check = await checkContact(this.home, name, user, keys)
    if (check.status === 'changed' && !opts.allowChanged) throw new KeyChangedError(user, check.oldFingerprint, check.newFingerprint)
    this.keyCache.set(user, keys)
    return { keys, fingerprint: keyFingerprint(keys), status: check.status }
  }

  /** re-pins a contact's current key after the user verified it */
  async trust (username: string): Promise<string> {
    const { name } = this.me()
    const { keys, fingerprint } = await this.contactKeys(username, { allowChanged: true })
    await acceptContactKey(this.home, name, username.toLowerCase(), keys)
    return fingerprint
  }

  async whois (username: string): Promise<{ username: string, fingerprint: string, status: string }> {
    const r = await this.contactKeys(username, { allowChanged: true })
    return { username: username.toLowerCase(), fingerprint: r.fingerprint, status: r.status }
  }

  /** seals a DM to the recipient (and to ourselves, to read it back) and sends it */
  async sendDm (to: string, text: string, clientId = newClientId()): Promise<ChatMessage> {
    const { name, identity } = this.me()
    const peer = to.toLowerCase()
    const { keys } = await this.contactKeys(peer) // throws KeyChangedError before anything is sent
    const sentAt = Date.now()
    const body = sealDm({ from: name, to: peer, clientId, sentAt, text, senderSign: identity.sign.privateKey, recipientEnc: keys.enc, senderEnc: identity.enc.publicKey })
    const { data } = await this.call('POST', '/v1/dms', { to: peer, clientId, body })
    return { id: data.message.id, from: name, to: peer, text, sentAt, verified: true }
  }

  async readDms (opts: ReadOptions = {}): Promise<Page> {
    const { name, identity } = this.me()
    const q = new URLSearchParams()
    if (opts.latest) q.set('latest', '1')
    if (opts.after) q.set('after', opts.after)
    if (opts.limit) q.set('limit', String(opts.limit))
    if (opts.wait) q.set('wait', String(opts.wait))
    const { data } = await this.call('GET', `/v1/dms${q.size ? '?' + q : ''}`, undefined, { timeoutMs: ((opts.wait ?? 0) + 15) * 1000 })
    const out: ChatMessage[] = []
    for (const m of data.messages as WireMessage[]) out.push(await this.openOne(m, name, identity))
    return { messages: out, cursor: data.cursor ?? opts.after }
  }

  private async openOne (m: WireMessage, me: string, identity: Identity): Promise<ChatMessage> {
    const base: ChatMessage = { id: m.id, from: m.from, to: m.to, text: null, sentAt: m.sentAt, verified: false }
    let senderSign: string
    if (m.from === me) {
      senderSign = publicKeys(identity).sign
    } else {
      try {
        senderSign = (await this.contactKeys(m.from)).keys.sign
      } catch (err) {
        if (err instanceof KeyChangedError) return { ...base, warning: err.message }
        return { ...base, warning: `cannot check ${m.from}'s key: ${(err as Error).message}` }
      }
    }
    let sentAt = m.sentAt
    try {
      sentAt = decodeEnvelope(Buffer.from(m.body, 'base64url')).envelope.header.sentAt
    } catch { /* openDm reports it as malformed */ }
    const opened = openDm(m.body, { me, myEnc: identity.enc, from: m.from, to: m.to!, clientId: m.clientId, sentAt, senderSignPub: senderSign })
    if (opened.verified) return { ...base, text: opened.text, sentAt, verified: true }
    return { ...base, warning: `message failed verification (${opened.reason}); it is not shown` }
  }

  get loggedIn (): boolean { return this.token !== null }
}
