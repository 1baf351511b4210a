// The client core shared by the terminal UI, the web UI and the scripting
// commands: account (register, login, logout), rooms, end-to-end encrypted DMs over
// PQXDH + Double Ratchet sessions (e2e/sessions.ts, PROTOCOL §11: forward secrecy, no
// signature on any message) with trust on first use of contacts' keys and safety
// numbers, all as API calls through the circuit manager. A contact's keys and prekey
// bundle are looked up on a circuit of their own without a token, at first contact and
// after a key change only. Sign-up writes the profile only once the server accepted the
// account, and login never replaces the server's keys with other ones unless told to
// (issue 17). Nothing here prints; callers decide what to show.
import { serverAuthority } from '../../onion/directory/consensus.js'
import { randomBase64url } from '../../onion/crypto/random.js'
import { MarshmelloError, isErrorCode, isMarshmelloError } from '../../errors.js'
import { passwordProblem } from '../../limits.js'
import { USERNAME_RULE, isRoomName, toUsername } from '../../names.js'
import type { UserKeys } from '../../storage/types.js'
import type { CircuitManager } from './circuit-manager.js'
import { generateIdentity, publicKeys, keyFingerprint, type Identity } from './e2e/keys.js'
import { openDm } from './e2e/dm.js'
import { decodeEnvelope } from './e2e/envelope.js'
import { decodeContent, encodeContent } from './e2e/content.js'
import { DmSessions, ONE_TIME_LOW, ONE_TIME_TARGET, bundleFromWire, type DmFailureReason } from './e2e/sessions.js'
import { safetyNumber, type SafetyNumber } from '../../onion/crypto/safety-number.js'
import type { IdentityPublic } from '../../onion/crypto/pqxdh.js'
import { createProfile, profileExists, unlockProfile } from './profile/identity.js'
import { acceptContactKey, checkContact, loadContacts, markVerified } from './profile/contacts.js'
import { OutboxFile } from './profile/outbox-file.js'
import { Connectivity } from './connectivity.js'
import { SealedSender } from './sealed-sender.js'
import { PENDING_PREFIX, type HistoryEntry } from './profile/dm-state.js'
import { acquireProfileLock, type ProfileLock } from './profile/lock.js'
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
  /** DMs only: the 60-digit safety number with the other party (PROTOCOL §11.4) */
  safetyNumber?: string
  /** DMs only: the user marked the other party's key verified */
  contactVerified?: boolean
}

export interface WhoisInfo {
  username: string
  fingerprint: string
  status: 'new' | 'same' | 'changed'
  /** 60 digits, in twelve groups of five */
  safetyNumber: string
  /** the string to show as a QR code */
  safetyQr: string
  verified: boolean
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
  private sessions: DmSessions | null = null
  /** sealed sender: certificate, access keys, anonymous tokens, the local DM log (sealed-sender.ts); null when the server offers none */
  private sealed: SealedSender | null = null
  /** resolves when this client logs a DM it sent, so a long-poll for DMs shows it at once (the server cannot: it never learns the sender) */
  private sentWake = wakeUp()
  /** safety numbers by the pair's keys (each costs 2 × 5200 SHA-512) */
  private readonly numbers = new Map<string, SafetyNumber>()
  /** online or not, from what requests get (connectivity.ts) */
  readonly connectivity = new Connectivity()

  constructor (readonly home: string | undefined, readonly circuits: CircuitManager) {}

  /** one API call through the onion; throws MarshmelloError with the server's code on 4xx/5xx */
  async call<T = any> (method: string, path: string, body?: unknown, opts: { timeoutMs?: number, auth?: boolean, isolated?: boolean, anonymous?: boolean } = {}): Promise<{ status: number, data: T }> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    // an isolated request (a contact lookup) never carries the token: nothing ties it to us
    // an anonymous request (a sealed send, the token key) never carries it either, and goes on the anonymous circuit
    if (opts.auth !== false && !opts.isolated && !opts.anonymous && this.token) headers.authorization = `Bearer ${this.token}`
    const n = this.connectivity.begin()
    let res
    try {
      const req = { method, path, headers, body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)) }
      res = opts.isolated
        ? await this.circuits.requestIsolated(req, { timeoutMs: opts.timeoutMs })
        : opts.anonymous ? await this.circuits.requestAnonymous(req, { timeoutMs: opts.timeoutMs }) : await this.circuits.request(req, { timeoutMs: opts.timeoutMs })
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
    // the first prekeys go with the sign-up, so others can write before this user signs in (PROTOCOL §11.2)
    const sessions = await DmSessions.open(this.home, name, identity)
    const prekeys = sessions.makeUpload({ full: true, oneTime: ONE_TIME_TARGET, oneTimeKem: ONE_TIME_TARGET })
    try {
      await this.call('POST', '/v1/auth/register', { username: name, password, keys: publicKeys(identity), prekeys }, { auth: false })
    } catch (err) {
      if ((err as MarshmelloError).code === 'MM_ERR_USER_EXISTS') {
        throw new MarshmelloError('MM_ERR_USER_EXISTS', `the name ${name} is taken; choose another, or if it is yours, move your profile here from the computer that has it (marshmello profile export, then marshmello profile import)`)
      }
      throw err
    }
    if (!leftover) await createProfile(this.home, name, password, identity)
    await sessions.persist()
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
    // one process per signed-in profile (its DM state), taken before the server is asked
    if (haveProfile) this.lock = acquireProfileLock(this.home, name)
    let data: { token: string }
    try {
      data = (await this.call('POST', '/v1/auth/login', { username: name, password }, { auth: false })).data
    } catch (err) {
      this.releaseLock()
      throw err
    }
    this.token = data.token
    this.username = name
    try {
      const server = (await this.call('GET', '/v1/users/me/keys')).data.keys as UserKeys | null
      let mine = identity
      if (mine === null) {
        // replaceKeys without a profile: new keys, kept locally before the server gets them
        mine = generateIdentity()
        await createProfile(this.home, name, password, mine)
        this.lock = acquireProfileLock(this.home, name)
      }
      const pub = publicKeys(mine)
      const same = server && server.enc === pub.enc && server.sign === pub.sign
      if (server && !same && !opts.replaceKeys) throw keysMismatch(name, keyFingerprint(pub), keyFingerprint(server))
      if (!same) await this.call('PUT', '/v1/users/me/keys', pub)
      this.identity = mine
      this.sessions = await DmSessions.open(this.home, name, mine)
      await this.ensurePrekeys()
      try {
        this.sealed = await SealedSender.start({
          home: this.home,
          me: name,
          identity: mine,
          // sender certificates chain to the server's own authority key, the first pinned (PROTOCOL §12.2)
          pinnedRoot: serverAuthority(this.circuits.directoryKey),
          call: async (m, p, b) => (await this.call(m, p, b)).data,
          anonymous: async (m, p, b) => (await this.call(m, p, b, { anonymous: true })).data,
        })
        // a profile from before the one history kept its DM log in sealed.json: moved over once,
        // on disk in dm-state.json before sealed.json lets go of it (a crash between keeps both)
        const legacy = this.sealed.legacyLog
        if (legacy.length > 0) {
          for (const m of legacy) this.sessions.remember(m)
          await this.sessions.persist()
          await this.sealed.dropLegacyLog()
        }
      } catch (err) {
        // a split deployment's messages service has no sealed sender: rooms work, DMs are refused
        if (!(isMarshmelloError(err) && err.code === 'MM_ERR_SEALED_UNAVAILABLE')) throw err
        this.sealed = null
      }
    } catch (err) {
      await this.logout()
      throw err
    }
  }

  /** every local write begun without waiting is on disk (call before the process ends) */
  async flush (): Promise<void> {
    await this.sessions?.flush()
  }

  async logout (): Promise<void> {
    await this.flush()
    if (this.token) await this.call('POST', '/v1/auth/logout').catch(() => {})
    this.token = null
    this.identity = null
    this.username = null
    this.sessions = null
    this.sealed = null
    this.releaseLock()
  }

  private lock: ProfileLock | null = null

  private releaseLock (): void {
    this.lock?.release()
    this.lock = null
  }

  /**
   * Keeps the server's prekeys in step with this profile (PQXDH §3.2): all new when the server
   * holds none of ours (new keys, a lost upload) or the signed prekey is a week old (rotation),
   * else one-time prekeys topped up when low.
   */
  private async ensurePrekeys (): Promise<void> {
    const sessions = this.sessions!
    const counts = (await this.call('GET', '/v1/users/me/prekeys')).data as { oneTime: number, oneTimeKem: number, signedPrekeyId?: number, lastResortId?: number }
    const full = counts.signedPrekeyId === undefined || counts.signedPrekeyId !== sessions.signedPrekeyId || counts.lastResortId !== sessions.lastResortId || sessions.signedPrekeyDue(Date.now())
    const top = (n: number) => full || n < ONE_TIME_LOW ? Math.max(0, ONE_TIME_TARGET - n) : 0
    const upload = sessions.makeUpload({ full, oneTime: top(counts.oneTime), oneTimeKem: top(counts.oneTimeKem) })
    if (!full && upload.oneTime!.length === 0 && upload.oneTimeKem!.length === 0) return
    await sessions.persist() // the secrets are on disk before the server hands out their public halves
    await this.call('PUT', '/v1/users/me/prekeys', upload)
  }

  /** the profile's outbox file, sealed with a key derived from this login's private keys (profile/outbox-file.ts) */
  outboxFile (): OutboxFile {
    const { name, identity } = this.me()
    const secret = Buffer.concat([identity.enc.privateKey, identity.sign.privateKey])
    try { return new OutboxFile(this.home, name, secret) } finally { secret.fill(0) }
  }

  private me (): { name: string, identity: Identity, sessions: DmSessions } {
    if (!this.username || !this.identity || !this.token || !this.sessions) throw new MarshmelloError('MM_ERR_NOT_LOGGED_IN', 'log in first')
    return { name: this.username, identity: this.identity, sessions: this.sessions }
  }

  /** the signed-in user with sealed sender, which DMs need */
  private meSealed (): { name: string, identity: Identity, sessions: DmSessions, sealed: SealedSender } {
    const me = this.me()
    /** Thrown when the server (a split messages service) offers no sealed sender: DMs are never sent identified instead. */
    if (!this.sealed) throw new MarshmelloError('MM_ERR_SEALED_UNAVAILABLE', 'this server does not offer sealed sender, so DMs are off (they are never sent with your name instead)')
    return { ...me, sealed: this.sealed }
  }

  /** whether strangers may send this user sealed first messages (PROTOCOL §12.3; default true) */
  async setAllowStrangers (allow: boolean): Promise<void> {
    await this.meSealed().sealed.setAllowStrangers(allow)
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

  /**
   * A user's identity keys, looked up quietly (a circuit of its own, no token), checked
   * against the pinned ones (TOFU): 'new' pins them.
   */
  async contactKeys (username: string, opts: { allowChanged?: boolean } = {}): Promise<{ keys: UserKeys, fingerprint: string, status: 'new' | 'same' | 'changed' }> {
    const { name } = this.me()
    const user = username.toLowerCase()
    const { data } = await this.call('GET', `/v1/users/${encodeURIComponent(user)}/keys`, undefined, { isolated: true })
    if (!data.keys) throw new MarshmelloError('MM_ERR_NO_KEYS', `${user} has no end-to-end keys yet`)
    const keys = data.keys as UserKeys
    const check = await checkContact(this.home, name, user, keys)
    if (check.status === 'changed' && !opts.allowChanged) throw new KeyChangedError(user, check.oldFingerprint, check.newFingerprint)
    return { keys, fingerprint: keyFingerprint(keys), status: check.status }
  }

  /** re-pins a contact's current key after the user verified it; sessions with the old key end */
  async trust (username: string): Promise<string> {
    const { name, sessions } = this.me()
    const user = username.toLowerCase()
    const { keys, fingerprint } = await this.contactKeys(user, { allowChanged: true })
    await acceptContactKey(this.home, name, user, keys)
    const active = sessions.sessionIdentity(user)
    if (active && keyFingerprint({ enc: active.dh, sign: active.sig }) !== fingerprint) {
      sessions.dropSessions(user)
      await sessions.persist()
    }
    return fingerprint
  }

  async whois (username: string): Promise<WhoisInfo> {
    const { name, identity } = this.me()
    const user = username.toLowerCase()
    const r = await this.contactKeys(user, { allowChanged: true })
    const n = this.safety(name, identity, user, identityOf(r.keys))
    const pinned = (await loadContacts(this.home, name))[user]
    return { username: user, fingerprint: r.fingerprint, status: r.status, safetyNumber: n.grouped, safetyQr: n.qr, verified: r.status !== 'changed' && pinned?.verified === true }
  }

  /** marks `username`'s pinned key verified, after the two of you compared safety numbers */
  async verify (username: string): Promise<WhoisInfo> {
    const { name } = this.me()
    const w = await this.whois(username)
    if (w.status === 'changed') throw new KeyChangedError(w.username, (await loadContacts(this.home, name))[w.username]?.fingerprint ?? '', w.fingerprint)
    await markVerified(this.home, name, w.username, w.fingerprint)
    return { ...w, verified: true }
  }

  private safety (me: string, identity: Identity, peer: string, theirs: IdentityPublic): SafetyNumber {
    const key = `${peer}:${theirs.dh.toString('base64')}:${theirs.sig.toString('base64')}`
    let n = this.numbers.get(key)
    if (!n) {
      n = safetyNumber({ identity: { dh: identity.enc.publicKey, sig: identity.sign.publicKey }, username: me }, { identity: theirs, username: peer })
      if (this.numbers.size >= 256) this.numbers.delete(this.numbers.keys().next().value!)
      this.numbers.set(key, n)
    }
    return n
  }

  /** the safety number and verified mark of a pinned contact, for showing beside a DM */
  private async contactView (peer: string, contacts?: Awaited<ReturnType<typeof loadContacts>>): Promise<Pick<ChatMessage, 'safetyNumber' | 'contactVerified'>> {
    const { name, identity } = this.me()
    const pinned = (contacts ?? await loadContacts(this.home, name))[peer]
    if (!pinned) return {}
    return { safetyNumber: this.safety(name, identity, peer, identityOf(pinned.keys)).digits, contactVerified: pinned.verified === true }
  }

  /**
   * Encrypts a DM on the session with the recipient (PQXDH first, from a bundle claimed
   * quietly when there is none or the contact's key was re-trusted) and sends it.
   */
  async sendDm (to: string, text: string, clientId = newClientId()): Promise<ChatMessage> {
    const { name, sessions, sealed: sender } = this.meSealed()
    const peer = to.toLowerCase()
    // a retry of the same client id sends the bytes encrypted the first time, so the server stores it once
    const earlier = this.sealedPending.get(clientId)
    let sealed: { to: string, text: string, sentAt: number, body: string }
    if (earlier && earlier.to === peer && earlier.text === text) {
      sealed = earlier
    } else {
      const pinned = (await loadContacts(this.home, name))[peer]
      // another key was seen for them (a DM, a lookup) and not trusted yet: nothing is sent
      if (pinned?.pending) throw new KeyChangedError(peer, pinned.fingerprint, keyFingerprint(pinned.pending))
      if (!sessions.canSendTo(peer, pinned ? identityOf(pinned.keys) : undefined)) {
        const { data } = await this.call('POST', `/v1/users/${encodeURIComponent(peer)}/prekeys/claim`, undefined, { isolated: true })
        const check = await checkContact(this.home, name, peer, data.identity as UserKeys)
        if (check.status === 'changed') throw new KeyChangedError(peer, check.oldFingerprint, check.newFingerprint) // before anything is sent
        sessions.startWith(peer, bundleFromWire(data))
      }
      const sentAt = Date.now()
      const inner = sessions.encryptDm(peer, encodeContent({ sentAt, text }))
      // the ratchet has moved on before the bytes leave (no message key is used twice), and the
      // DM is in the local history as pending, in the same write
      sealed = { to: peer, text, sentAt, body: inner.toString('base64url') }
      if (this.sealedPending.size >= MAX_SEALED_PENDING) this.sealedPending.delete(this.sealedPending.keys().next().value!)
      this.sealedPending.set(clientId, sealed) // (before the write: a read meanwhile knows it is on its way)
      sessions.rememberPending(clientId, { from: name, to: peer, text, sentAt })
      await sessions.persist()
    }
    // the inner bytes go in a sealed envelope to the peer's pinned identity key, on the anonymous circuit, with no token (PROTOCOL §12)
    const recipient = (await loadContacts(this.home, name))[peer]
    if (!recipient) throw new MarshmelloError('MM_ERR_NO_KEYS', `no pinned key for ${peer}`)
    const { id } = await sender.send(peer, recipient.keys.enc, Buffer.from(sealed.body, 'base64url'))
    this.sealedPending.delete(clientId)
    // the server keeps no copy for the sender: the local history does; its server id is written
    // without waiting (lost in a crash, the DM stays in the history as pending)
    sessions.confirm(clientId, id)
    sessions.persistSoon()
    const wake = this.sentWake
    this.sentWake = wakeUp()
    wake.resolve()
    return { id, from: name, to: peer, text, sentAt: sealed.sentAt, verified: true, ...await this.contactView(peer) }
  }

  /**
   * DMs: the server's inbox (a sealed DM is opened here, its sender is whoever the checked
   * certificate names) merged with the local history of DMs sent and already read (dm-state.json). A DM that
   * opened is logged, then acknowledged, and the server deletes it (PROTOCOL §12.6).
   */
  async readDms (opts: ReadOptions = {}): Promise<Page> {
    const { name, sessions, sealed } = this.meSealed()
    const limit = opts.limit ?? 50
    const sent = this.sentWake.promise // before looking: a DM sent after this wakes the wait below
    const logged = new Map(sessions.log.map((l) => [l.id, l]))
    // something newer is already here: answer at once rather than long-poll the server
    const localNews = opts.after !== undefined && sessions.log.some((l) => l.pending !== true && l.id > opts.after!)
    const query = readQuery({ ...opts, wait: localNews ? undefined : opts.wait })
    const request = this.call('GET', `/v1/dms${query}`, undefined, { timeoutMs: ((opts.wait ?? 0) + 15) * 1000 })
    let data: { messages: WireMessage[], cursor?: string | null, hasMore?: boolean }
    if (opts.wait && !localNews) {
      // our own sends never wake the server's long-poll: stop waiting for it when one is logged
      // (what the abandoned request brings is not acknowledged, so the next read gets it again)
      const first = await Promise.race([request.then((r) => r.data), sent.then(() => null)])
      if (first === null) request.catch(() => {})
      data = first ?? { messages: [], cursor: null, hasMore: false }
    } else {
      data = (await request).data
    }
    const out: ChatMessage[] = []
    const ack: string[] = []
    let changed = false
    for (const raw of data.messages) {
      const known = logged.get(raw.id)
      if (known !== undefined) {
        out.push(fromLog(known))
        if (raw.to === name) ack.push(raw.id)
        continue
      }
      let r: { message: ChatMessage, changed: boolean }
      // a sealed envelope, however the server labels its row (a server replaying one under a sender's name included)
      let o: Awaited<ReturnType<SealedSender['open']>> | undefined
      let failed: unknown
      try { o = await sealed.open(raw.body) } catch (err) { failed = err }
      if (o !== undefined) {
        // the certificate names the X25519 identity key that sealed it: the session must be under it
        r = await this.openInner({ id: raw.id, from: o.sender, to: name, sentAt: raw.sentAt }, o.inner, { dh: o.senderIdentity })
      } else if (raw.from === '') {
        const code = isMarshmelloError(failed) ? failed.code : 'MM_ERR_SEALED'
        out.push({ id: raw.id, from: '?', to: raw.to, text: null, sentAt: raw.sentAt, verified: false, warning: `a sealed message that failed its checks (${code}); it is not shown` })
        continue
      } else {
        r = await this.openOne(raw)
      }
      changed ||= r.changed
      out.push(r.message)
      // opened: in the local history (openInner), which is on disk before the server may delete it
      if (o !== undefined && raw.to === name && r.message.verified && r.message.text !== null) ack.push(raw.id)
    }
    // every session step of this page, and the messages it revealed, are on disk (one file,
    // one write) before any of them is shown or acknowledged
    if (changed) await sessions.persist()
    if (ack.length > 0) await sealed.ack(ack).catch(() => { /* deleted at a later read, or after the retention period */ })

    const onServer = new Set(out.map((m) => m.id))
    // a pending DM is shown by its sender's call while it is on its way; one an earlier run left
    // unconfirmed (it stopped before the server's answer was written) only in a page of history
    const shownPending = (l: HistoryEntry) => opts.after === undefined && !this.sealedPending.has(l.id.slice(PENDING_PREFIX.length))
    let local = sessions.log.filter((l) => !onServer.has(l.id) && (l.pending !== true || shownPending(l)) && (opts.after === undefined || l.id > opts.after) && (opts.before === undefined || l.id < opts.before))
    const lastServer = out.at(-1)?.id
    const backwards = opts.latest === true || opts.before !== undefined
    // a full forward page ends where the next one starts: local entries past it belong to that page
    if (!backwards && data.hasMore === true && lastServer !== undefined) local = local.filter((l) => l.id <= lastServer)
    const merged = [...out, ...local.map(fromLog)].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    const messages = backwards ? merged.slice(-limit) : merged.slice(0, limit)
    const contacts = messages.length > 0 ? await loadContacts(this.home, name) : undefined
    for (const m of messages) if (m.to !== undefined && m.from !== '?') Object.assign(m, await this.contactView(m.from === name ? m.to : m.from, contacts))
    const hasMore = data.hasMore === true || merged.length > messages.length
    const cursor = opts.before !== undefined ? messages[0]?.id : messages.at(-1)?.id ?? data.cursor ?? opts.after
    return { messages, cursor: cursor ?? undefined, hasMore }
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

  /** the people of the last 200 DMs, the most recent first */
  async dmPeers (): Promise<string[]> {
    const { name } = this.me()
    const page = await this.readDms({ latest: true, limit: 200 })
    const peers: string[] = []
    for (const m of page.messages.slice().reverse()) {
      const peer = m.from === name ? m.to : m.from
      if (peer && peer !== '?' && !peers.includes(peer)) peers.push(peer)
    }
    return peers
  }

  /** the newest DMs with `peer` (of the last `scan` DMs), oldest first */
  async dmHistory (peer: string, opts: { limit?: number, scan?: number } = {}): Promise<ChatMessage[]> {
    const user = peer.toLowerCase()
    const page = await this.readDms({ latest: true, limit: opts.scan ?? 200 })
    return page.messages.filter((m) => m.from === user || m.to === user).slice(-(opts.limit ?? 20))
  }

  /**
   * One stored DM: from the local history when a session already revealed it, else
   * decrypted (once: the session's state moves on and the message key is erased). A replay
   * under any server id, or after a restart, finds its key gone and is refused.
   */
  private async openOne (m: WireMessage): Promise<{ message: ChatMessage, changed: boolean }> {
    const { name: me, identity, sessions } = this.me()
    const base: ChatMessage = { id: m.id, from: m.from, to: m.to, text: null, sentAt: m.sentAt, verified: false }
    const seen = sessions.shown(m.id)
    if (seen) return { message: { ...base, text: seen.text, sentAt: seen.sentAt, verified: true }, changed: false }
    const inner = decodeBody(m.body)
    if (inner === undefined) return { message: { ...base, warning: 'message failed verification (malformed); it is not shown' }, changed: false }
    if (inner[0] === 0x01) return { message: await this.openLegacy(m, me, identity), changed: false }
    if (m.from === me) return { message: { ...base, warning: 'sent by this account from another profile or before this one kept a history; it cannot be read here' }, changed: false }
    return await this.openInner({ id: m.id, from: m.from, to: m.to!, sentAt: m.sentAt }, inner)
  }

  /**
   * One DM's inner bytes (PROTOCOL §11.1) from `from`, however they arrived (today a stored
   * DM; a sealed envelope names `from` only inside, with the sender's identity keys in a
   * certificate: pass them as `certified`, and a session with other keys is refused). The
   * caller persists the sessions (`changed`) before it shows the message.
   */
  async openInner (m: { id: string, from: string, to: string, sentAt: number }, inner: Uint8Array, certified?: { dh: Buffer, sig?: Buffer }): Promise<{ message: ChatMessage, changed: boolean }> {
    const { name: me, sessions } = this.me()
    const base: ChatMessage = { id: m.id, from: m.from, to: m.to, text: null, sentAt: m.sentAt, verified: false }
    const refuse = (warning: string) => ({ message: { ...base, warning }, changed: false })
    const r = sessions.decryptDm(m.from, inner)
    if (!r.ok) return refuse(failureText(r.reason))
    // a sender certificate names the X25519 identity key (PROTOCOL §12.2); the Ed25519 one only when given
    if (certified && !(r.identity.dh.equals(certified.dh) && (certified.sig === undefined || r.identity.sig.equals(certified.sig)))) {
      return refuse('refused: the session\'s keys are not the ones the sender certificate names')
    }
    const check = await checkContact(this.home, me, m.from, { enc: r.identity.dh.toString('base64'), sign: r.identity.sig.toString('base64') })
    // not committed: once the user re-trusts the new key, the message opens on the next read
    if (check.status === 'changed') return refuse(new KeyChangedError(m.from, check.oldFingerprint, check.newFingerprint).message)
    r.commit()
    const content = decodeContent(r.plaintext)
    r.plaintext.fill(0)
    if (content === undefined) return { message: { ...base, warning: 'message failed verification (malformed content); it is not shown' }, changed: true }
    sessions.remember({ id: m.id, from: m.from, to: m.to, text: content.text, sentAt: content.sentAt })
    return { message: { ...base, text: content.text, sentAt: content.sentAt, verified: true }, changed: true }
  }

  /**
   * A DM in the retired envelope v1 (PROTOCOL §11.6): still readable with keys this profile
   * holds (its own, or the sender's pinned key), without any lookup; else one clear message.
   */
  private async openLegacy (m: WireMessage, me: string, identity: Identity): Promise<ChatMessage> {
    const base: ChatMessage = { id: m.id, from: m.from, to: m.to, text: null, sentAt: m.sentAt, verified: false }
    const pinned = m.from === me ? publicKeys(identity) : (await loadContacts(this.home, me))[m.from]?.keys
    if (!pinned) return { ...base, warning: `sent with an older Marshmello (envelope v1) by ${m.from}, whose key this profile has not pinned; ask them to send it again` }
    let sentAt = m.sentAt
    try {
      sentAt = decodeEnvelope(Buffer.from(m.body, 'base64url')).envelope.header.sentAt
    } catch { /* openDm reports it as malformed */ }
    const opened = openDm(m.body, { me, myEnc: identity.enc, from: m.from, to: m.to!, clientId: m.clientId, sentAt, senderSignPub: pinned.sign })
    if (opened.verified) return { ...base, text: opened.text, sentAt, verified: true, warning: 'sent with an older Marshmello (no forward secrecy)' }
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

/** a promise and the function that resolves it */
function wakeUp (): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

const fromLog = (l: HistoryEntry): ChatMessage => ({
  id: l.id, from: l.from, to: l.to, text: l.text, sentAt: l.sentAt, verified: true,
  ...(l.pending === true ? { warning: 'sent from this profile, but it stopped before the server confirmed it; send it again if the recipient did not get it' } : {}),
})

const identityOf = (keys: UserKeys): IdentityPublic => ({ dh: Buffer.from(keys.enc, 'base64'), sig: Buffer.from(keys.sign, 'base64') })

/** strict, canonical base64url within the DM size bound; undefined when not */
function decodeBody (body: unknown): Buffer | undefined {
  if (typeof body !== 'string' || body.length === 0 || body.length > 64 * 1024 || !/^[A-Za-z0-9_-]+$/.test(body)) return undefined
  const bytes = Buffer.from(body, 'base64url')
  return bytes.toString('base64url') === body ? bytes : undefined
}

function failureText (reason: DmFailureReason): string {
  switch (reason) {
    case 'replay': return 'refused: a replay of a message already shown (its key is gone); it is not shown again'
    case 'no-prekey': return 'refused: it starts a session with a prekey already used or gone (a replay, or sent to another install of this account)'
    case 'too-far': return 'refused: too many messages of this conversation are missing before it'
    case 'malformed': return 'message failed verification (malformed); it is not shown'
    default: return 'message failed verification (undecryptable); it is not shown'
  }
}
