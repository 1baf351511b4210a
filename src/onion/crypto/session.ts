// A DM session with one peer, pure: PQXDH starts it (pqxdh.ts), the Double Ratchet with
// header encryption carries every message (ratchet.ts), the inner wire form is
// session-message.ts. The initiator repeats the PQXDH header on each message until the
// first reply arrives (as Signal's PreKeySignalMessage), so a lost first message does not
// lose the session; a repeat of a header already accepted goes to the same session, where
// the ratchet refuses any message key used before. Callers persist the returned session
// before they show a plaintext. Leaves out where prekeys and sessions are kept.
import { MarshmelloError } from '../../errors.js'
import { equalBytes } from './primitives.js'
import { pqxdhInitiate, pqxdhRespond, type IdentityPrivate, type IdentityPublic, type InitialHeader, type PrekeyBundle } from './pqxdh.js'
import {
  canSend, ratchetDecrypt, ratchetEncrypt, ratchetInitAlice, ratchetInitBob, stateFromJson, stateToJson,
  type DecryptFailure, type RatchetState, type RatchetStateJson, type Rng
} from './ratchet.js'
import { encodePrekeyMessage, encodeRatchetMessage } from './session-message.js'
import { randomBytes } from './random.js'

export interface Session {
  ratchet: RatchetState
  /** PQXDH §3.3 AD, bound into every message */
  ad: Buffer
  peerIdentity: IdentityPublic
  /** EKA of the PQXDH message that made the session: a repeat of it belongs here */
  ephemeral: Buffer
  /** the initiator's PQXDH header, sent along until the peer's first reply */
  pending: InitialHeader | null
}

/** PQXDH §3.3 then Double Ratchet §4.4 (Alice): a session ready to send. */
export function startSession (init: { me: IdentityPrivate, myName: string, peerName: string, bundle: PrekeyBundle, rng?: Rng }): Session {
  const { header, secrets } = pqxdhInitiate(init)
  // §5.1 (integration with X3DH): Bob's signed prekey is his first ratchet key
  const ratchet = ratchetInitAlice(secrets.sk, init.bundle.signedPrekey.key, secrets.hka, secrets.nhkb, init.rng)
  secrets.sk.fill(0)
  return { ratchet, ad: secrets.ad, peerIdentity: init.bundle.identity, ephemeral: header.ephemeral, pending: header }
}

/** PQXDH §3.4 then Double Ratchet §4.4 (Bob); the caller deletes the one-time prekey once the first message decrypts. */
export function acceptSession (init: {
  me: IdentityPrivate, myName: string, peerName: string, header: InitialHeader,
  signedPrekeyPrivate: Uint8Array, kemSeed: Uint8Array, oneTimePrivate?: Uint8Array
}): Session {
  let secrets
  try {
    secrets = pqxdhRespond(init)
  } catch (err) {
    if (err instanceof MarshmelloError && err.code === 'MM_ERR_BAD_PREKEY') throw err
    /** Thrown when an initial message carries a low-order X25519 key. */
    throw new MarshmelloError('MM_ERR_BAD_PREKEY', 'the initial message does not agree (bad ephemeral or identity key)')
  }
  const ratchet = ratchetInitBob(secrets.sk, init.signedPrekeyPrivate, secrets.hka, secrets.nhkb)
  secrets.sk.fill(0)
  return {
    ratchet, ad: secrets.ad, peerIdentity: { dh: Buffer.from(init.header.identity.dh), sig: Buffer.from(init.header.identity.sig) },
    ephemeral: Buffer.from(init.header.ephemeral), pending: null
  }
}

export const sessionCanSend = (s: Session): boolean => canSend(s.ratchet)

/** the inner bytes of one message, and the session to keep */
export function sessionEncrypt (s: Session, plaintext: Uint8Array, rng: Rng = randomBytes): { session: Session, bytes: Buffer } {
  const { state, message } = ratchetEncrypt(s.ratchet, plaintext, s.ad, rng)
  const bytes = s.pending ? encodePrekeyMessage(s.pending, message) : encodeRatchetMessage(message)
  return { session: { ...s, ratchet: state }, bytes }
}

export type SessionDecrypt =
  | { ok: true, session: Session, plaintext: Buffer }
  | { ok: false, reason: DecryptFailure }

/** one ratchet message; a success also ends the initiator's PQXDH repeats */
export function sessionDecrypt (s: Session, ratchetMessage: Uint8Array, rng: Rng = randomBytes): SessionDecrypt {
  const r = ratchetDecrypt(s.ratchet, ratchetMessage, s.ad, rng)
  if (!r.ok) return r
  return { ok: true, session: { ...s, ratchet: r.state, pending: null }, plaintext: r.plaintext }
}

/** whether a PQXDH header is a repeat of the one that made `s` */
export const sameInitial = (s: Session, h: InitialHeader): boolean =>
  equalBytes(s.ephemeral, h.ephemeral) && equalBytes(s.peerIdentity.dh, h.identity.dh) && equalBytes(s.peerIdentity.sig, h.identity.sig)

/* ---- persistence (JSON, base64), inside the profile's sealed store ---- */

export interface SessionJson {
  ratchet: RatchetStateJson
  ad: string
  peer: { dh: string, sig: string }
  ephemeral: string
  pending: InitialHeaderJson | null
}

interface InitialHeaderJson {
  dh: string, sig: string, ek: string, spk: number, kem: number, lastResort: boolean, opk: number | null, ct: string
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
function bytes (v: unknown, len?: number): Buffer {
  if (typeof v !== 'string') throw new Error('bad bytes')
  const b = Buffer.from(v, 'base64')
  if ((len !== undefined && b.length !== len) || b.toString('base64') !== v) throw new Error('bad bytes')
  return b
}

export function sessionToJson (s: Session): SessionJson {
  const p = s.pending
  return {
    ratchet: stateToJson(s.ratchet),
    ad: b64(s.ad),
    peer: { dh: b64(s.peerIdentity.dh), sig: b64(s.peerIdentity.sig) },
    ephemeral: b64(s.ephemeral),
    pending: p === null
      ? null
      : { dh: b64(p.identity.dh), sig: b64(p.identity.sig), ek: b64(p.ephemeral), spk: p.signedPrekeyId, kem: p.kemPrekeyId, lastResort: p.lastResort, opk: p.oneTimePrekeyId ?? null, ct: b64(p.kemCiphertext) }
  }
}

/** Throws Error on anything that is not a saved session. */
export function sessionFromJson (j: SessionJson): Session {
  if (j == null || typeof j !== 'object' || j.peer == null) throw new Error('bad session')
  const p = j.pending
  const id = (v: unknown) => { if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffffffff) throw new Error('bad id'); return v as number }
  return {
    ratchet: stateFromJson(j.ratchet),
    ad: bytes(j.ad),
    peerIdentity: { dh: bytes(j.peer.dh, 32), sig: bytes(j.peer.sig, 32) },
    ephemeral: bytes(j.ephemeral, 32),
    pending: p === null
      ? null
      : {
        identity: { dh: bytes(p.dh, 32), sig: bytes(p.sig, 32) },
        ephemeral: bytes(p.ek, 32),
        signedPrekeyId: id(p.spk),
        kemPrekeyId: id(p.kem),
        lastResort: p.lastResort === true,
        oneTimePrekeyId: p.opk === null ? undefined : id(p.opk),
        kemCiphertext: bytes(p.ct, 1088)
      }
  }
}
