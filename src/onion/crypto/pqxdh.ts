// PQXDH key agreement (Signal, "The PQXDH Key Agreement Protocol", revision 3, Kret and
// Schmidt): a user publishes an X25519 identity key, a signed prekey, one-time prekeys, a
// signed last-resort ML-KEM-768 prekey and signed one-time ML-KEM-768 prekeys (§3.2); a
// sender who fetched that bundle computes SK from four X25519 agreements and one KEM
// encapsulation (§3.3); the recipient recomputes it from the initial message (§3.4).
// Parameters (§2.1): curve X25519, hash SHA-256, pqkem ML-KEM-768, info PQXDH_INFO.
//
// One stated deviation: Signal signs prekeys with XEdDSA over the X25519 identity key, which
// node:crypto does not offer. Here a user's identity is the pair (X25519 key, Ed25519 key);
// the Ed25519 key signs every prekey together with the X25519 identity key (binding the two),
// both keys go into AD (§3.3 allows additions) and into the safety number. No message is
// ever signed (§4.4 deniability). Leaves out storage and the wire codec (session-message.ts).
import { MarshmelloError } from '../../errors.js'
import { ed25519Sign, ed25519Verify, hkdfSha256, x25519, x25519PublicFromPrivate } from './primitives.js'
import { MLKEM_CIPHERTEXT_BYTES, MLKEM_PUBLIC_BYTES, mlkemDecapsulate, mlkemEncapsulate } from './mlkem.js'
import { randomBytes } from './random.js'

/** §2.1 info: identifies the application and the parameter choice */
export const PQXDH_INFO = Buffer.from('Marshmello_PQXDH_X25519_SHA-256_ML-KEM-768', 'ascii')
/** domain separation of prekey signatures (the deviation above) */
export const PREKEY_SIG_CONTEXT = Buffer.from('Marshmello_PQXDH_prekey_v1', 'ascii')
/** §2.2: F = 32 0xFF bytes before the key material when curve is X25519 */
const F = Buffer.alloc(32, 0xff)
/** §2.2: HKDF salt, a zero-filled byte sequence as long as the hash output */
const SALT = Buffer.alloc(32)
/** EncodeEC type byte (§2.1 recommends one byte naming the curve; 0x05 as libsignal's X25519) */
export const EC_TYPE = 0x05
/** EncodeKEM type byte for ML-KEM-768 (our own constant) */
export const KEM_TYPE = 0x01

export const encodeEC = (pub: Uint8Array): Buffer => Buffer.concat([Buffer.of(EC_TYPE), pub])
export const encodeKEM = (pub: Uint8Array): Buffer => Buffer.concat([Buffer.of(KEM_TYPE), pub])

/** A user's identity as others see it: IK (X25519) and the Ed25519 key bound to it. */
export interface IdentityPublic {
  /** X25519 identity key IK, 32 bytes */
  dh: Buffer
  /** Ed25519 identity signing key, 32 bytes */
  sig: Buffer
}

export interface IdentityPrivate extends IdentityPublic {
  dhPrivate: Buffer
  sigPrivate: Buffer
}

export type PrekeyKind = 'signed' | 'kem-last-resort' | 'kem-one-time'
const KIND_BYTE: Record<PrekeyKind, number> = { signed: 1, 'kem-last-resort': 2, 'kem-one-time': 3 }

function idBytes (id: number): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new MarshmelloError('MM_ERR_BAD_KEY', 'prekey id must be a 32-bit unsigned integer')
  const b = Buffer.alloc(4)
  b.writeUInt32BE(id)
  return b
}

/** what the identity signs for one prekey: context ‖ EncodeEC(IK) ‖ kind ‖ id ‖ Encode(key) */
export function prekeySignedBytes (identityDh: Uint8Array, kind: PrekeyKind, id: number, key: Uint8Array): Buffer {
  const encoded = kind === 'signed' ? encodeEC(key) : encodeKEM(key)
  return Buffer.concat([PREKEY_SIG_CONTEXT, encodeEC(identityDh), Buffer.of(KIND_BYTE[kind]), idBytes(id), encoded])
}

/** §3.2 Sig(IKB, Encode(prekey)), with the Ed25519 identity signing key */
export function signPrekey (me: IdentityPrivate, kind: PrekeyKind, id: number, key: Uint8Array): Buffer {
  return ed25519Sign(me.sigPrivate, prekeySignedBytes(me.dh, kind, id, key))
}

export function verifyPrekey (identity: IdentityPublic, kind: PrekeyKind, id: number, key: Uint8Array, signature: Uint8Array): boolean {
  const len = kind === 'signed' ? 32 : MLKEM_PUBLIC_BYTES
  if (key.length !== len) return false
  return ed25519Verify(identity.sig, prekeySignedBytes(identity.dh, kind, id, key), signature)
}

/** §3.2: what the server hands a sender, one one-time prekey of each kind at most */
export interface PrekeyBundle {
  identity: IdentityPublic
  signedPrekey: { id: number, key: Buffer, signature: Buffer }
  /** a one-time ML-KEM prekey, or the last-resort one when none is left */
  kemPrekey: { id: number, key: Buffer, signature: Buffer, lastResort: boolean }
  /** a one-time X25519 prekey, when one is left */
  oneTimePrekey?: { id: number, key: Buffer }
}

/** §3.3: what the initial message carries besides the first ratchet message */
export interface InitialHeader {
  /** IKA */
  identity: IdentityPublic
  /** EKA */
  ephemeral: Buffer
  signedPrekeyId: number
  kemPrekeyId: number
  lastResort: boolean
  oneTimePrekeyId?: number
  /** CT, the ML-KEM-768 ciphertext */
  kemCiphertext: Buffer
}

/**
 * SK and the two header keys the Double Ratchet with header encryption needs (Double Ratchet
 * §4.4: shared_hka, shared_nhkb). They are one HKDF output of 96 bytes: the first 32 are
 * exactly §2.2's KDF(KM) (HKDF-Expand output is a prefix of a longer one), the rest the keys.
 */
export interface SessionSecrets { sk: Buffer, hka: Buffer, nhkb: Buffer, ad: Buffer }

/** §2.2 KDF over KM = DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS */
export function pqxdhKdf (km: Buffer[]): { sk: Buffer, hka: Buffer, nhkb: Buffer } {
  const ikm = Buffer.concat([F, ...km])
  const out = hkdfSha256(ikm, SALT, PQXDH_INFO, 96)
  ikm.fill(0)
  return { sk: out.subarray(0, 32), hka: out.subarray(32, 64), nhkb: out.subarray(64, 96) }
}

/**
 * §3.3 AD = EncodeEC(IKA) ‖ EncodeEC(IKB), then (allowed additions) both Ed25519 identity
 * keys and both usernames, length-prefixed, so a session is bound to names and keys.
 */
export function associatedData (initiator: IdentityPublic, initiatorName: string, responder: IdentityPublic, responderName: string): Buffer {
  const name = (s: string) => {
    const b = Buffer.from(s, 'utf8')
    if (b.length < 1 || b.length > 255) throw new MarshmelloError('MM_ERR_BAD_INPUT', 'username must be 1..255 bytes')
    return Buffer.concat([Buffer.of(b.length), b])
  }
  return Buffer.concat([encodeEC(initiator.dh), encodeEC(responder.dh), initiator.sig, responder.sig, name(initiatorName), name(responderName)])
}

/** Thrown when a bundle's prekey signature does not verify (§3.3: Alice aborts). */
const badBundle = (what: string) => new MarshmelloError('MM_ERR_BAD_PREKEY', `prekey bundle refused: ${what}`)

export interface InitiateInit {
  me: IdentityPrivate
  myName: string
  peerName: string
  bundle: PrekeyBundle
  /** vectors only: EKA's private key and a fixed encapsulation (node cannot fix its randomness) */
  fixed?: { ephemeralPrivate: Uint8Array, kem: { ciphertext: Buffer, sharedSecret: Buffer } }
  rng?: (n: number) => Uint8Array
}

/** §3.3 Sending the initial message: verifies the bundle, returns the header and the secrets. */
export function pqxdhInitiate (init: InitiateInit): { header: InitialHeader, secrets: SessionSecrets } {
  const { bundle, me } = init
  const spk = bundle.signedPrekey
  const kem = bundle.kemPrekey
  if (!verifyPrekey(bundle.identity, 'signed', spk.id, spk.key, spk.signature)) throw badBundle('signed prekey signature')
  if (!verifyPrekey(bundle.identity, kem.lastResort ? 'kem-last-resort' : 'kem-one-time', kem.id, kem.key, kem.signature)) throw badBundle('ML-KEM prekey signature')
  const ekPrivate = init.fixed ? Buffer.from(init.fixed.ephemeralPrivate) : Buffer.from((init.rng ?? randomBytes)(32))
  const { ciphertext, sharedSecret } = init.fixed ? init.fixed.kem : mlkemEncapsulate(kem.key)
  if (ciphertext.length !== MLKEM_CIPHERTEXT_BYTES) throw badBundle('KEM ciphertext length')
  let km: Buffer[]
  try {
    km = [
      x25519(me.dhPrivate, spk.key), // DH1 = DH(IKA, SPKB)
      x25519(ekPrivate, bundle.identity.dh), // DH2 = DH(EKA, IKB)
      x25519(ekPrivate, spk.key) // DH3 = DH(EKA, SPKB)
    ]
    if (bundle.oneTimePrekey) km.push(x25519(ekPrivate, bundle.oneTimePrekey.key)) // DH4 = DH(EKA, OPKB)
  } catch {
    throw badBundle('an X25519 key has low order')
  }
  km.push(Buffer.from(sharedSecret)) // SS (a copy: the caller's buffer is not erased here)
  const header: InitialHeader = {
    identity: { dh: Buffer.from(me.dh), sig: Buffer.from(me.sig) },
    ephemeral: x25519PublicFromPrivate(ekPrivate),
    signedPrekeyId: spk.id,
    kemPrekeyId: kem.id,
    lastResort: kem.lastResort,
    oneTimePrekeyId: bundle.oneTimePrekey?.id,
    kemCiphertext: Buffer.from(ciphertext)
  }
  // §3.3: Alice deletes her ephemeral private key and the DH outputs
  ekPrivate.fill(0)
  const keys = pqxdhKdf(km)
  for (const k of km) k.fill(0)
  return { header, secrets: { ...keys, ad: associatedData(header.identity, init.myName, bundle.identity, init.peerName) } }
}

export interface RespondInit {
  me: IdentityPrivate
  myName: string
  peerName: string
  header: InitialHeader
  signedPrekeyPrivate: Uint8Array
  kemSeed: Uint8Array
  /** the one-time prekey's private key, when the header names one */
  oneTimePrivate?: Uint8Array
}

/** §3.4 Receiving the initial message: the same secrets from Bob's private keys. */
export function pqxdhRespond (init: RespondInit): SessionSecrets {
  const h = init.header
  if ((h.oneTimePrekeyId === undefined) !== (init.oneTimePrivate === undefined)) {
    throw new MarshmelloError('MM_ERR_BAD_PREKEY', 'the one-time prekey of the initial message is not available')
  }
  const km = [
    x25519(init.signedPrekeyPrivate, h.identity.dh), // DH1
    x25519(init.me.dhPrivate, h.ephemeral), // DH2
    x25519(init.signedPrekeyPrivate, h.ephemeral) // DH3
  ]
  if (init.oneTimePrivate) km.push(x25519(init.oneTimePrivate, h.ephemeral)) // DH4
  km.push(mlkemDecapsulate(init.kemSeed, h.kemCiphertext)) // SS
  const keys = pqxdhKdf(km)
  for (const k of km) k.fill(0)
  return { ...keys, ad: associatedData(h.identity, init.peerName, { dh: init.me.dh, sig: init.me.sig }, init.myName) }
}
