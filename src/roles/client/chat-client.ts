// The client core shared by the terminal UI, the web UI and the scripting
// commands: account (register, login, logout), rooms, end-to-end encrypted DMs
// (sealed to the recipient's key, signed by the sender, P8) with trust on first
// use of contacts' keys, all as API calls through the circuit manager. Sign-up writes
// the profile only once the server accepted the account, and login never replaces the
// server's keys with other ones unless told to (issue 17). Nothing here prints;
// callers decide what to show.
import { randomBase64url } from '../../onion/crypto/random.js'
import { MarshmelloError, isErrorCode } from '../../errors.js'
import { passwordProblem } from '../../limits.js'
import { USERNAME_RULE, isRoomName, toUsername } from '../../names.js'
import type { UserKeys } from '../../storage/types.js'
import type { CircuitManager } from './circuit-manager.js'
import { generateIdentity, publicKeys, keyFingerprint, type Identity } from './e2e/keys.js'
import { openDm, sealDm } from './e2e/dm.js'
import { decodeEnvelope } from './e2e/envelope.js'
import { createProfile, profileExists, unlockProfile } from './profile/identity.js'
import { acceptContactKey, checkContact } from './profile/contacts.js'
import { Connectivity } from './connectivity.js'
import { safeText } from './terminal/safe-text.js'

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

export interface Page {
  messages: ChatMessage[]
  /** after a forward read: where to go on; after a `before` read: the page's oldest id (the next `before`) */
  cursor?: string
  /** with `latest` or `before`: older messages exist */
  hasMore?: boolean
}

/** a room that exists on the server (GET /v1/rooms): its name, how many messages, when the newest came */
export interface RoomInfo { name: string, messages: number, lastAt: number }

/** the DMs with one peer before a position: `before` goes on (undefined: nothing older) */
export interface DmOlderPage { messages: ChatMessage[], before?: string }

export interface ReadOptions {
  /** messages after this id */
  after?: string
  /** long-poll up to this many seconds when nothing is new */
  wait?: number
  limit?: number
  /** the newest page (joining a room), not with after or wait */
  latest?: boolean
  /** older history: the newest page of the messages before this id, not with after, wait or latest */
  before?: string
}

/** the query string of a message read */
function readQuery (opts: ReadOptions): string {
  const q = new URLSearchParams()
  if (opts.latest) q.set('latest', '1')
  if (opts.after) q.set('after', opts.after)
  if (opts.before) q.set('before', opts.before)
  if (opts.limit) q.set('limit', String(opts.limit))
  if (opts.wait) q.set('wait', String(opts.wait))
  return q.size ? '?' + q : ''
}

/** Thrown when a contact's key differs from the one pinned on first use. */
export class KeyChangedError extends MarshmelloError {
  constructor (readonly username: string, readonly oldFingerprint: string, readonly newFingerprint: string) {
    super('MM_ERR_KEY_CHANGED', `WARNING: ${username}'s key changed (was ${oldFingerprint.slice(0, 16)}…, now ${newFingerprint.slice(0, 16)}…); verify it with them, then trust it with /trust ${username}`,
      { details: { username, oldFingerprint, newFingerprint } })
  }
}

export const newClientId = (): string => randomBase64url(12)

export interface LoginOptions {
  /**
   * Replace the server's end-to-end keys: with a local profile whose keys differ, upload
   * them; without a profile, make new keys (and the profile). Contacts then see a
   * key-change warning and must verify the user again. Without it such a login throws
   * MM_ERR_KEYS_MISMATCH or MM_ERR_PROFILE_UNKNOWN and changes nothing.
   */
  replaceKeys?: boolean
}

/** DMs sealed but not yet confirmed stored, by client id: a retry sends the same bytes (stored once) */
const MAX_SEALED_PENDING = 200

/** Thrown when the server holds other end-to-end keys for the user than this profile. */
const keysMismatch = (name: string, here: string, there: string) => new MarshmelloError('MM_ERR_KEYS_MISMATCH',
  `the server has other end-to-end keys for ${name} (${there.slice(0, 16)}…) than this profile (${here.slice(0, 16)}…): ` +
  `the account is used from another computer. Move that profile here (there: marshmello profile export --user ${name} --out FILE; ` +
  `here: marshmello profile import FILE), or replace the keys explicitly (contacts will see that ${name}'s key changed)`)

export class ChatClient {
  username: string | null = null
  private token: string | null = null
  private identity: Identity | null = null
  private readonly sealedPending = new Map<string, { to: string, text: string, sentAt: number, body: string }>()
  /** online or not, from what requests get (connectivity.ts) */
  readonly connectivity = new Connectivity()

  constructor (readonly home: string | undefined, readonly circuits: CircuitManager) {}

  /** one API call through the onion; throws MarshmelloError with the server's code on 4xx/5xx */
  async call<T = any> (method: string, path: string, body?: unknown, opts: { timeoutMs?: number, auth?: boolean } = {}): Promise<{ status: number, data: T }> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (opts.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`
    const n = this.connectivity.begin()
    let res
    try {
      res = await this.circuits.request({ method, path, headers, body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)) }, { timeoutMs: opts.timeoutMs })
    } catch (err) {
      this.connectivity.failed(n, err)
      throw err
    }
    this.connectivity.ok(n)
    let data: any = null
    if (res.body.length) {
      try { data = JSON.parse(res.body.toString('utf8')) } catch { data = null }
    }
    if (res.status >= 400) {
      const e = data?.error
      // the server's code carries its kind and status (one registry); an unknown one is MM_ERR_HTTP
      // the message may be printed: made safe for a terminal here, once for every caller
      throw new MarshmelloError(isErrorCode(e?.code) ? e.code : 'MM_ERR_HTTP', typeof e?.message === 'string' ? safeText(e.message.slice(0, 500)) : `server answered ${res.status}`)
    }
    return { status: res.status, data }
  }

  /**
   * Creates the account, then the profile (keys encrypted with the password): nothing is
   * written here until the server accepted the name, the password and the keys. A profile
   * left by an older client's failed sign-up is reused (its password must open it).
   */
  async register (username: string, password: string): Promise<void> {
    const name = checkNewAccount(username, password)
    const leftover = await profileExists(this.home, name)
    const identity = leftover ? await unlockProfile(this.home, name, password) : generateIdentity()
    try {
      await this.call('POST', '/v1/auth/register', { username: name, password, keys: publicKeys(identity) }, { auth: false })
    } catch (err) {
      if ((err as MarshmelloError).code === 'MM_ERR_USER_EXISTS') {
        throw new MarshmelloError('MM_ERR_USER_EXISTS', `the name ${name} is taken; choose another, or if it is yours, move your profile here from the computer that has it (marshmello profile export, then marshmello profile import)`)
      }
      throw err
    }
    if (!leftover) await createProfile(this.home, name, password, identity)
    this.identity = identity
    this.username = name
  }

  /**
   * Logs in with the profile's keys. The server's keys are never replaced silently: other
   * keys there throw MM_ERR_KEYS_MISMATCH, no profile here throws MM_ERR_PROFILE_UNKNOWN,
   * both before anything changes, unless `replaceKeys` (see LoginOptions).
   */
  async login (username: string, password: string, opts: LoginOptions = {}): Promise<void> {
    const name = username.toLowerCase()
    const haveProfile = await profileExists(this.home, name)
    if (!haveProfile && !opts.replaceKeys) {
      throw new MarshmelloError('MM_ERR_PROFILE_UNKNOWN', `no profile for ${name} on this computer (in this home). If ${name} is your account, move its profile here: ` +
        `on the computer that has it run marshmello profile export --user ${name} --out FILE, then here marshmello profile import FILE. New here? Sign up (marshmello register --user NAME)`)
    }
    const identity = haveProfile ? await unlockProfile(this.home, name, password) : null
    const { data } = await this.call('POST', '/v1/auth/login', { username: name, password }, { auth: false })
    this.token = data.token
    this.username = name
    try {
      const server = (await this.call('GET', '/v1/users/me/keys')).data.keys as UserKeys | null
      let mine = identity
      if (mine === null) {
        // replaceKeys without a profile: new keys, kept locally before the server gets them
        mine = generateIdentity()
        await createProfile(this.home, name, password, mine)
      }
      const pub = publicKeys(mine)
      const same = server && server.enc === pub.enc && server.sign === pub.sign
      if (server && !same && !opts.replaceKeys) throw keysMismatch(name, keyFingerprint(pub), keyFingerprint(server))
      if (!same) await this.call('PUT', '/v1/users/me/keys', pub)
      this.identity = mine
    } catch (err) {
      await this.logout()
      throw err
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
    const { data } = await this.call('GET', `/v1/rooms/${encodeURIComponent(room.toLowerCase())}/messages${readQuery(opts)}`, undefined, { timeoutMs: ((opts.wait ?? 0) + 15) * 1000 })
    return { messages: (data.messages as WireMessage[]).map((m) => this.show(m)), cursor: data.cursor ?? (opts.before ? undefined : opts.after), hasMore: data.hasMore === true }
  }

  /**
   * The rooms that exist on the server, by name, from after `after` (GET /v1/rooms): names
   * the server sends are checked against the room rule, so a hostile one cannot be shown.
   */
  async listRooms (opts: { after?: string, limit?: number } = {}): Promise<{ rooms: RoomInfo[], cursor: string | null, hasMore: boolean }> {
    this.me()
    const q = new URLSearchParams()
    if (opts.after) q.set('after', opts.after)
    if (opts.limit) q.set('limit', String(opts.limit))
    const { data } = await this.call('GET', `/v1/rooms${q.size ? '?' + q : ''}`)
    const rooms = (Array.isArray(data?.rooms) ? data.rooms as RoomInfo[] : [])
      .filter((r) => isRoomName(r?.name) && Number.isSafeInteger(r.messages) && Number.isFinite(r.lastAt))
      .map((r) => ({ name: r.name, messages: r.messages, lastAt: r.lastAt }))
    return { rooms, cursor: typeof data?.cursor === 'string' ? data.cursor : null, hasMore: data?.hasMore === true }
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
    // a retry of the same client id sends the bytes sealed the first time, so the server stores it once
    const earlier = this.sealedPending.get(clientId)
    const sealed = earlier && earlier.to === peer && earlier.text === text
      ? earlier
      : { to: peer, text, sentAt, body: sealDm({ from: name, to: peer, clientId, sentAt, text, senderSign: identity.sign.privateKey, recipientEnc: keys.enc, senderEnc: identity.enc.publicKey }) }
    if (!earlier) {
      if (this.sealedPending.size >= MAX_SEALED_PENDING) this.sealedPending.delete(this.sealedPending.keys().next().value!)
      this.sealedPending.set(clientId, sealed)
    }
    const { data } = await this.call('POST', '/v1/dms', { to: peer, clientId, body: sealed.body })
    this.sealedPending.delete(clientId)
    return { id: data.message.id, from: name, to: peer, text, sentAt: sealed.sentAt, verified: true }
  }

  async readDms (opts: ReadOptions = {}): Promise<Page> {
    const { name, identity } = this.me()
    const { data } = await this.call('GET', `/v1/dms${readQuery(opts)}`, undefined, { timeoutMs: ((opts.wait ?? 0) + 15) * 1000 })
    const out: ChatMessage[] = []
    const senders = new Map<string, Promise<UserKeys>>() // one key lookup per sender and page
    for (const m of data.messages as WireMessage[]) out.push(await this.openOne(m, name, identity, senders))
    return { messages: out, cursor: data.cursor ?? (opts.before ? undefined : opts.after), hasMore: data.hasMore === true }
  }

  /**
   * Older DMs with `peer`, before the DM id `before`: the server keeps one DM stream per
   * user, so this reads it backwards a page at a time (at most `maxPages` of 200) until
   * `limit` of them are with `peer`; `before` of the answer is where to go on.
   */
  async dmOlder (peer: string, before: string, opts: { limit?: number, maxPages?: number } = {}): Promise<DmOlderPage> {
    const user = peer.toLowerCase()
    const limit = opts.limit ?? 20
    const found: ChatMessage[] = []
    let cursor: string | undefined = before
    for (let pages = 0; cursor !== undefined && found.length < limit && pages < (opts.maxPages ?? 5); pages++) {
      const p = await this.readDms({ before: cursor, limit: 200 })
      found.unshift(...p.messages.filter((m) => m.from === user || m.to === user))
      cursor = p.hasMore ? p.cursor : undefined
    }
    // more than asked: the newest `limit` are shown, and the next page starts at the oldest of them
    if (found.length > limit) return { messages: found.slice(-limit), before: found[found.length - limit].id }
    return { messages: found, before: cursor }
  }

  /** the people of the last 200 DMs, the most recent first (read without opening them) */
  async dmPeers (): Promise<string[]> {
    const { name } = this.me()
    const { data } = await this.call('GET', '/v1/dms?latest=1&limit=200')
    const peers: string[] = []
    for (const m of (data.messages as WireMessage[]).slice().reverse()) {
      const peer = m.from === name ? m.to : m.from
      if (peer && !peers.includes(peer)) peers.push(peer)
    }
    return peers
  }

  /** the newest DMs with `peer` (of the last `scan` DMs), oldest first */
  async dmHistory (peer: string, opts: { limit?: number, scan?: number } = {}): Promise<ChatMessage[]> {
    const user = peer.toLowerCase()
    const page = await this.readDms({ latest: true, limit: opts.scan ?? 200 })
    return page.messages.filter((m) => m.from === user || m.to === user).slice(-(opts.limit ?? 20))
  }

  private async openOne (m: WireMessage, me: string, identity: Identity, senders: Map<string, Promise<UserKeys>>): Promise<ChatMessage> {
    const base: ChatMessage = { id: m.id, from: m.from, to: m.to, text: null, sentAt: m.sentAt, verified: false }
    let senderSign: string
    if (m.from === me) {
      senderSign = publicKeys(identity).sign
    } else {
      try {
        let keys = senders.get(m.from)
        if (!keys) {
          keys = this.contactKeys(m.from).then((r) => r.keys)
          senders.set(m.from, keys)
        }
        senderSign = (await keys).sign
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

/**
 * The stored form of a new account's name, or the rule it breaks in plain words
 * (MM_ERR_BAD_USERNAME, MM_ERR_PASSWORD), checked before anything is sent or written.
 */
export function checkNewAccount (username: string, password: string): string {
  const name = toUsername(username)
  if (name === null) throw new MarshmelloError('MM_ERR_BAD_USERNAME', `${JSON.stringify(username.slice(0, 40))} cannot be a username: ${USERNAME_RULE}`)
  const problem = passwordProblem(password)
  if (problem) throw new MarshmelloError('MM_ERR_PASSWORD', problem)
  return name
}
