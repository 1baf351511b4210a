// The circuit handshake ("exchange keys", docs/PROTOCOL.md §5.1): RSA-OAEP carries
// a client secret only the hop's identity key can recover (authentication, P4);
// an ephemeral X25519 exchange gives forward secrecy (P5); HKDF-SHA256 binds both
// to the transcript. Two steps with the randomness passed in, so tests can check
// exact vectors. Leaves out transport and timing.
//
//   CREATE  = X (32) | encLen (u16 BE) | RSA-OAEP-SHA256(identity, s) (encLen)
//   CREATED = Y (32) | auth (32)
import { MarshmelloError, lengthError } from '../../errors.js'
import {
  equalBytes, hkdfSha256, hmacSha256, randomBytes, rsaFingerprint, rsaOaepDecrypt, rsaOaepEncrypt,
  sha256, x25519Ephemeral, type X25519Ephemeral,
} from '../crypto/primitives.js'

export const PROTOCOL_ID = Buffer.from('marshmello/v1')
const AUTH_LABEL = Buffer.from('marshmello/v1 auth')
export const CREATED_LENGTH = 64

export interface HopKeys {
  /** client → hop layer key */
  forward: Buffer
  /** hop → client layer key */
  backward: Buffer
}

export interface ClientHandshakeState {
  /** the ephemeral x, made in clientStart so clientFinish only agrees; single use */
  eph: X25519Ephemeral
  X: Buffer
  s: Buffer
  fingerprint: Buffer
  encHash: Buffer
}

export interface ClientStartInit {
  /** the hop's identity key (SPKI DER) as listed in the signed consensus */
  identityKey: Uint8Array
  /** for vectors: fixed ephemeral private key and secret */
  ephemeralPrivate?: Uint8Array
  secret?: Uint8Array
}

export function clientStart (init: ClientStartInit): { state: ClientHandshakeState, create: Buffer } {
  const eph = x25519Ephemeral(init.ephemeralPrivate)
  const X = eph.publicKey
  const s = init.secret ? Buffer.from(init.secret) : randomBytes(32)
  const enc = rsaOaepEncrypt(init.identityKey, s)
  const create = Buffer.alloc(32 + 2 + enc.length)
  X.copy(create, 0)
  create.writeUInt16BE(enc.length, 32)
  enc.copy(create, 34)
  return { state: { eph, X, s, fingerprint: rsaFingerprint(init.identityKey), encHash: sha256(enc) }, create }
}

function derive (s: Uint8Array, dh: Uint8Array, X: Uint8Array, Y: Uint8Array, fp: Uint8Array): { keys: HopKeys, authKey: Buffer } {
  const okm = hkdfSha256(Buffer.concat([s, dh]), Buffer.alloc(0), Buffer.concat([PROTOCOL_ID, X, Y, fp]), 96)
  const keys = { forward: Buffer.from(okm.subarray(0, 32)), backward: Buffer.from(okm.subarray(32, 64)) }
  const authKey = Buffer.from(okm.subarray(64, 96))
  okm.fill(0)
  return { keys, authKey }
}

/** Parses a CREATE body. Throws MM_ERR_LENGTH for a truncated or oversized one. */
export function parseCreate (create: Uint8Array): { X: Buffer, enc: Buffer } {
  if (create.length < 34) throw lengthError('CREATE', 'at least 34', create.length)
  const b = Buffer.from(create.buffer, create.byteOffset, create.length)
  const encLen = b.readUInt16BE(32)
  if (encLen < 128 || encLen > 1024 || 34 + encLen > b.length) throw lengthError('CREATE RSA block', `128..1024 within ${b.length - 34}`, encLen)
  return { X: Buffer.from(b.subarray(0, 32)), enc: Buffer.from(b.subarray(34, 34 + encLen)) }
}

export interface RelayRespondInit {
  identityPrivate: Uint8Array
  /** SHA-256 of the hop's SPKI */
  fingerprint: Uint8Array
  create: Uint8Array
  /** for vectors: a fixed ephemeral private key */
  ephemeralPrivate?: Uint8Array
  /** a key prepared ahead (EphemeralPool); its private bytes are erased here after use */
  ephemeral?: X25519Ephemeral
}

/** Hop side. Throws MM_ERR_HANDSHAKE when the secret cannot be recovered (not our key). */
export function relayRespond (init: RelayRespondInit): { keys: HopKeys, created: Buffer } {
  let eph = init.ephemeral
  try {
    const { X, enc } = parseCreate(init.create)
    const s = rsaOaepDecrypt(init.identityPrivate, enc)
    if (!s || s.length !== 32) throw new MarshmelloError('MM_ERR_HANDSHAKE', 'CREATE secret could not be decrypted with this identity')
    try {
      eph ??= x25519Ephemeral(init.ephemeralPrivate)
      const Y = eph.publicKey
      const dh = eph.agree(X) // throws MM_ERR_HANDSHAKE for a low-order X
      const { keys, authKey } = derive(s, dh, X, Y, init.fingerprint)
      const auth = hmacSha256(authKey, AUTH_LABEL, init.fingerprint, X, Y, sha256(enc))
      dh.fill(0); authKey.fill(0)
      return { keys, created: Buffer.concat([Y, auth]) }
    } finally {
      s.fill(0)
    }
  } finally {
    // the secret and the ephemeral key are erased on every path, errors included (P5);
    // a prepared key is single-use too, so it goes even when the CREATE was refused
    eph?.dispose()
  }
}

/** Client side. Throws MM_ERR_HANDSHAKE when the hop's answer does not authenticate. */
export function clientFinish (state: ClientHandshakeState, created: Uint8Array): HopKeys {
  if (created.length < CREATED_LENGTH) throw lengthError('CREATED', String(CREATED_LENGTH), created.length)
  const Y = Buffer.from(created.subarray(0, 32))
  const auth = created.subarray(32, 64)
  let keys: HopKeys, expected: Buffer
  try {
    const dh = state.eph.agree(Y) // throws MM_ERR_HANDSHAKE for a low-order Y
    const d = derive(state.s, dh, state.X, Y, state.fingerprint)
    keys = d.keys
    expected = hmacSha256(d.authKey, AUTH_LABEL, state.fingerprint, state.X, Y, state.encHash)
    dh.fill(0); d.authKey.fill(0)
  } finally {
    // the handshake is single-use: its secrets are erased on every path, errors included (P5)
    state.eph.dispose(); state.s.fill(0)
  }
  if (!equalBytes(expected, auth)) {
    keys.forward.fill(0); keys.backward.fill(0)
    throw new MarshmelloError('MM_ERR_HANDSHAKE', 'hop failed to prove it holds the listed identity key')
  }
  return keys
}
