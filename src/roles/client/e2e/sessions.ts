// DM sessions of one signed-in user (docs/PROTOCOL.md §11): the client side of PQXDH and the
// Double Ratchet (src/onion/crypto/session.ts) with the prekey secrets, sessions, accepted
// PQXDH messages and local history kept in the sealed profile file (profile/dm-state.ts).
// The API other layers use is encryptDm(peer, plaintext) -> inner bytes and
// decryptDm(peer, inner) -> plaintext: the transport (today POST /v1/dms; a sealed envelope
// carrying a sender certificate later) wraps these opaque bytes. Every change is persisted
// before its result is used: a message key is never used twice, a message decrypts once.

import { MarshmelloError } from '../../../errors.js'
import { mlkemKeyPair } from '../../../onion/crypto/mlkem.js'
import { signPrekey, type IdentityPrivate, type IdentityPublic, type PrekeyBundle } from '../../../onion/crypto/pqxdh.js'
import { randomBytes, sha256, x25519PublicFromPrivate } from '../../../onion/crypto/primitives.js'
import {
  acceptSession, sameInitial, sessionCanSend, sessionDecrypt, sessionEncrypt, sessionFromJson, sessionToJson, startSession, type Session
} from '../../../onion/crypto/session.js'
import { decodeInner } from '../../../onion/crypto/session-message.js'
import { PENDING_PREFIX, loadDmState, saveDmState, type DmStateData, type HistoryEntry } from '../profile/dm-state.js'
import type { Identity } from './keys.js'

/** sessions kept per peer (simultaneous starts, a peer's re-install) */
export const MAX_SESSIONS_PER_PEER = 5
/** PQXDH messages remembered as accepted (PQXDH §4.2 replay of an initial message with no one-time prekey) */
export const MAX_SEEN = 4096
/**
 * How long a signed prekey and the last-resort ML-KEM prekey are used before new ones are
 * published (PQXDH §3.2: "at some interval (e.g. once a week or once a month)"); the ones
 * before stay for messages already on their way until the next change, so a private key
 * lives at most two intervals (then it is deleted, for forward secrecy).
 */
export const SIGNED_PREKEY_ROTATE_MS = 7 * 86_400_000

/** how long persistSoon() waits for a persist() that would carry its change anyway */
const SOON_MS = 250

/** DMs kept in the local history */
export const MAX_HISTORY = 5000
/** one-time prekeys kept on the server: topped up below LOW */
export const ONE_TIME_TARGET = 20
export const ONE_TIME_LOW = 10

export type DmFailureReason = 'replay' | 'undecryptable' | 'malformed' | 'too-far' | 'no-prekey' | 'legacy'

export type DecryptedDm =
  | { ok: true, plaintext: Buffer, identity: IdentityPublic, newSession: boolean, commit: () => void }
  | { ok: false, reason: DmFailureReason }

/** The body of PUT /v1/users/me/prekeys (and of a sign-up's `prekeys`), base64. */
export interface PrekeyUploadWire {
  signedPrekey?: { id: number, key: string, signature: string }
  lastResortKem?: { id: number, key: string, signature: string }
  oneTime?: Array<{ id: number, key: string }>
  oneTimeKem?: Array<{ id: number, key: string, signature: string }>
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64')

export function identityPrivate (identity: Identity): IdentityPrivate {
  return { dh: identity.enc.publicKey, sig: identity.sign.publicKey, dhPrivate: identity.enc.privateKey, sigPrivate: identity.sign.privateKey }
}

/** The bundle of a claim answer (POST /v1/users/:name/prekeys/claim), as bytes. */
export function bundleFromWire (w: any): PrekeyBundle {
  const out: PrekeyBundle = {
    identity: { dh: unb64(w.identity.enc), sig: unb64(w.identity.sign) },
    signedPrekey: { id: w.signedPrekey.id, key: unb64(w.signedPrekey.key), signature: unb64(w.signedPrekey.signature) },
    kemPrekey: { id: w.kemPrekey.id, key: unb64(w.kemPrekey.key), signature: unb64(w.kemPrekey.signature), lastResort: w.kemPrekey.lastResort === true }
  }
  if (w.oneTimePrekey) out.oneTimePrekey = { id: w.oneTimePrekey.id, key: unb64(w.oneTimePrekey.key) }
  return out
}

export class DmSessions {
  private constructor (
    private readonly home: string | undefined,
    readonly me: string,
    private readonly identity: Identity,
    private data: DmStateData,
    /** true when the file on disk was sealed under other keys (replaced keys): started over */
    readonly startedOver: boolean
  ) {}

  static async open (home: string | undefined, me: string, identity: Identity): Promise<DmSessions> {
    const { data, stale } = await loadDmState(home, me, identity)
    return new DmSessions(home, me, identity, data, stale)
  }

  /** writes everything (call after any change, before its result is shown or sent) */
  async persist (): Promise<void> {
    this.dirty = false // this write carries everything so far, a deferred one included
    await saveDmState(this.home, this.me, this.identity, this.data)
  }

  /* ---- prekeys (PQXDH §3.2) ---- */

  get signedPrekeyId (): number | undefined { return this.data.prekeys.signed?.id }

  /** the signed prekey (and the last-resort one with it) is due for replacement at `now` */
  signedPrekeyDue (now: number): boolean {
    const at = this.data.prekeys.signed?.at
    return at === undefined || now - at >= SIGNED_PREKEY_ROTATE_MS
  }
  get lastResortId (): number | undefined { return this.data.prekeys.lastResort?.id }

  /**
   * New prekey secrets (kept in memory until persist()) and their public upload: with `full`,
   * a new signed prekey and last-resort ML-KEM prekey too (the previous signed one is kept
   * for messages already on their way).
   */
  makeUpload (opts: { full: boolean, oneTime: number, oneTimeKem: number }): PrekeyUploadWire {
    const p = this.data.prekeys
    const me = identityPrivate(this.identity)
    const id = () => p.nextId++
    const out: PrekeyUploadWire = {}
    if (opts.full) {
      const priv = randomBytes(32)
      const spk = { id: id(), pub: x25519PublicFromPrivate(priv) }
      p.previousSigned = p.signed === null ? null : { id: p.signed.id, priv: p.signed.priv }
      p.signed = { id: spk.id, priv: b64(priv), at: Date.now() }
      out.signedPrekey = { id: spk.id, key: b64(spk.pub), signature: b64(signPrekey(me, 'signed', spk.id, spk.pub)) }
      const lr = mlkemKeyPair()
      const lrId = id()
      p.previousLastResort = p.lastResort
      p.lastResort = { id: lrId, seed: b64(lr.seed) }
      out.lastResortKem = { id: lrId, key: b64(lr.publicKey), signature: b64(signPrekey(me, 'kem-last-resort', lrId, lr.publicKey)) }
    }
    out.oneTime = []
    for (let i = 0; i < opts.oneTime; i++) {
      const priv = randomBytes(32)
      const k = id()
      p.oneTime[k] = b64(priv)
      out.oneTime.push({ id: k, key: b64(x25519PublicFromPrivate(priv)) })
    }
    out.oneTimeKem = []
    for (let i = 0; i < opts.oneTimeKem; i++) {
      const kp = mlkemKeyPair()
      const k = id()
      p.oneTimeKem[k] = b64(kp.seed)
      out.oneTimeKem.push({ id: k, key: b64(kp.publicKey), signature: b64(signPrekey(me, 'kem-one-time', k, kp.publicKey)) })
    }
    return out
  }

  /* ---- sessions ---- */

  private sessionsOf (peer: string): Session[] {
    return (Object.hasOwn(this.data.sessions, peer) ? this.data.sessions[peer] : []).map(sessionFromJson)
  }

  private setSessions (peer: string, list: Session[]): void {
    this.data.sessions[peer] = list.slice(0, MAX_SESSIONS_PER_PEER).map(sessionToJson)
  }

  /** the peer identity of our active session, if any */
  sessionIdentity (peer: string): IdentityPublic | undefined {
    return this.sessionsOf(peer)[0]?.peerIdentity
  }

  /** whether a message to `peer` can go out without fetching a bundle */
  canSendTo (peer: string, identity?: IdentityPublic): boolean {
    const s = this.sessionsOf(peer)[0]
    if (s === undefined || !sessionCanSend(s)) return false
    return identity === undefined || (s.peerIdentity.dh.equals(identity.dh) && s.peerIdentity.sig.equals(identity.sig))
  }

  /** PQXDH §3.3 with a claimed bundle: a new active session (throws MM_ERR_BAD_PREKEY on a bad bundle) */
  startWith (peer: string, bundle: PrekeyBundle): void {
    const s = startSession({ me: identityPrivate(this.identity), myName: this.me, peerName: peer, bundle })
    this.setSessions(peer, [s, ...this.sessionsOf(peer)])
  }

  /** forgets every session with `peer` (their key changed and was re-trusted) */
  dropSessions (peer: string): void {
    delete this.data.sessions[peer]
  }

  /** the inner bytes of one DM to `peer`, the session advanced (persist before sending) */
  encryptDm (peer: string, plaintext: Uint8Array): Buffer {
    const list = this.sessionsOf(peer)
    if (list.length === 0 || !sessionCanSend(list[0])) throw new MarshmelloError('MM_ERR_INTERNAL', `no session with ${peer} to send on`)
    const { session, bytes } = sessionEncrypt(list[0], plaintext)
    this.setSessions(peer, [session, ...list.slice(1)])
    return bytes
  }

  /**
   * Decrypts one DM from `peer` without changing anything: `commit()` applies the new
   * session (and deletes used one-time prekeys) once the caller accepts the sender's
   * identity; then persist(). A replay, or a message whose keys are gone, is refused.
   */
  decryptDm (peer: string, inner: Uint8Array): DecryptedDm {
    const msg = decodeInner(inner)
    if (msg === undefined) return { ok: false, reason: 'malformed' }
    if (msg.kind === 'legacy') return { ok: false, reason: 'legacy' }
    const list = this.sessionsOf(peer)
    if (msg.kind === 'message') {
      let last: DmFailureReason = 'undecryptable'
      for (let i = 0; i < list.length; i++) {
        const r = sessionDecrypt(list[i], msg.message)
        if (!r.ok) { if (r.reason === 'replay') last = 'replay'; continue }
        const rest = list.filter((_, j) => j !== i)
        return { ok: true, plaintext: r.plaintext, identity: r.session.peerIdentity, newSession: false, commit: () => this.setSessions(peer, [r.session, ...rest]) }
      }
      return { ok: false, reason: last }
    }
    // a PQXDH message: the repeat of a session's first message, or a new session
    const h = msg.header
    const i = list.findIndex(s => sameInitial(s, h))
    if (i !== -1) {
      const r = sessionDecrypt(list[i], msg.message)
      if (!r.ok) return { ok: false, reason: r.reason }
      const rest = list.filter((_, j) => j !== i)
      return { ok: true, plaintext: r.plaintext, identity: r.session.peerIdentity, newSession: false, commit: () => this.setSessions(peer, [r.session, ...rest]) }
    }
    const tag = b64(sha256(h.ephemeral, h.kemCiphertext).subarray(0, 16))
    if (this.data.seen.includes(tag)) return { ok: false, reason: 'replay' }
    const p = this.data.prekeys
    const spk = p.signed?.id === h.signedPrekeyId ? p.signed : p.previousSigned?.id === h.signedPrekeyId ? p.previousSigned : null
    const kemSeed = h.lastResort
      ? (p.lastResort?.id === h.kemPrekeyId ? p.lastResort.seed : p.previousLastResort?.id === h.kemPrekeyId ? p.previousLastResort.seed : undefined)
      : (Object.hasOwn(p.oneTimeKem, h.kemPrekeyId) ? p.oneTimeKem[h.kemPrekeyId] : undefined)
    const opk = h.oneTimePrekeyId === undefined ? undefined : (Object.hasOwn(p.oneTime, h.oneTimePrekeyId) ? p.oneTime[h.oneTimePrekeyId] : null)
    // a one-time prekey already used: this is a replay (or a copy) of an accepted first message
    if (spk === null || kemSeed === undefined || opk === null) return { ok: false, reason: 'no-prekey' }
    let session: Session
    try {
      session = acceptSession({
        me: identityPrivate(this.identity), myName: this.me, peerName: peer, header: h,
        signedPrekeyPrivate: unb64(spk.priv), kemSeed: unb64(kemSeed), oneTimePrivate: opk === undefined ? undefined : unb64(opk)
      })
    } catch {
      return { ok: false, reason: 'undecryptable' }
    }
    const r = sessionDecrypt(session, msg.message)
    if (!r.ok) return { ok: false, reason: r.reason }
    return {
      ok: true, plaintext: r.plaintext, identity: session.peerIdentity, newSession: true,
      commit: () => {
        // PQXDH §3.4: Bob deletes the one-time prekeys he used
        if (!h.lastResort) delete p.oneTimeKem[h.kemPrekeyId]
        if (h.oneTimePrekeyId !== undefined) delete p.oneTime[h.oneTimePrekeyId]
        this.data.seen.push(tag)
        if (this.data.seen.length > MAX_SEEN) this.data.seen.splice(0, this.data.seen.length - MAX_SEEN)
        this.setSessions(peer, [r.session, ...list])
      }
    }
  }

  /* ---- local history: what a session already revealed, by server id ---- */

  shown (id: string): HistoryEntry | undefined {
    return this.data.history.find(h => h.id === id)
  }

  /**
   * Adds a DM sent or revealed here to the local history (by server id, once; kept in id
   * order, the oldest dropped past MAX_HISTORY). It is written with the next persist(), in
   * the same file as the ratchet step that revealed it: the one local DM history.
   */
  remember (entry: HistoryEntry): void {
    if (this.shown(entry.id)) return
    const h = this.data.history
    let i = h.length
    while (i > 0 && h[i - 1].id > entry.id) i--
    h.splice(i, 0, entry)
    if (h.length > MAX_HISTORY) h.splice(0, h.length - MAX_HISTORY)
  }

  /** the local DM history, in server id order, pending sends last (what readDms merges with the server's inbox) */
  get log (): readonly HistoryEntry[] {
    return this.data.history
  }

  /**
   * A DM about to be sent as `clientId`: kept as pending, so the persist() that writes the
   * ratchet step before the bytes leave writes the DM with it (one durable write).
   */
  rememberPending (clientId: string, entry: Omit<HistoryEntry, 'id' | 'pending'>): void {
    const id = PENDING_PREFIX + clientId
    this.data.history = this.data.history.filter((h) => h.id !== id)
    this.remember({ ...entry, id, pending: true })
  }

  /** the server stored pending DM `clientId` as `id` (written with the next persist) */
  confirm (clientId: string, id: string): void {
    const i = this.data.history.findIndex((h) => h.id === PENDING_PREFIX + clientId)
    if (i < 0) return
    const [entry] = this.data.history.splice(i, 1)
    const { pending: _pending, ...sent } = entry
    this.remember({ ...sent, id })
  }

  /**
   * persist() later, without waiting: for a write whose loss is harmless (a pending entry's
   * server id: after a crash the entry is still on disk as pending). Deferred by
   * SOON_MS and skipped when a persist() meanwhile wrote the state anyway, so DMs sent back
   * to back cost one write each, not two. flush() writes what is left.
   */
  persistSoon (): void {
    this.dirty = true
    if (this.soon !== null) return
    const timer = setTimeout(() => { void this.flush() }, SOON_MS)
    timer.unref()
    this.soon = timer
  }

  /** the state persistSoon() deferred is on disk (or its write failed: the next persist() carries it) */
  async flush (): Promise<void> {
    if (this.soon !== null) clearTimeout(this.soon)
    this.soon = null
    if (this.dirty) await this.persist().catch(() => { this.dirty = true })
  }

  private dirty = false
  private soon: NodeJS.Timeout | null = null

  /** one-time prekeys this side still holds secrets for */
  get oneTimeHeld (): { oneTime: number, oneTimeKem: number } {
    return { oneTime: Object.keys(this.data.prekeys.oneTime).length, oneTimeKem: Object.keys(this.data.prekeys.oneTimeKem).length }
  }
}
