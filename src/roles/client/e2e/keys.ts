// A user's end-to-end identity: an X25519 key pair (DMs are encrypted to it) and an
// Ed25519 key pair (DMs are signed with it), kept as raw 32-byte Buffers, with their
// base64/length rules, the server's UserKeys shape (base64) and the key fingerprint. The
// key objects and the fingerprint's bytes are onion/crypto's (okp.ts, fingerprints.ts).
// Storing keys on disk is profile/identity.ts; using them is dm.ts.

import { MarshmelloError, lengthError } from '../../../errors.js'
import { userKeyFingerprint } from '../../../onion/crypto/fingerprints.js'
import { okpPrivateKey, okpPublicKey, okpRawPrivate, okpRawPublic, type KeyObject, type OkpCurve, type RawKeyPair } from '../../../onion/crypto/okp.js'
import { randomBytes } from '../../../onion/crypto/primitives.js'
import type { UserKeys } from '../../../storage/types.js'

export const KEY_BYTES = 32

export type { RawKeyPair }

export interface Identity {
  /** X25519: DMs to this user are encrypted to `enc.publicKey` */
  enc: RawKeyPair
  /** Ed25519: DMs by this user are signed with `sign.privateKey` */
  sign: RawKeyPair
}

export type KeyCurve = OkpCurve

const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/

/** Thrown when a key is not valid base64 of the expected raw bytes. */
const badKey = (what: string) =>
  new MarshmelloError('MM_ERR_BAD_KEY', `${what} is not base64 of 32 raw bytes`)

/**
 * Accepts a raw key (Buffer/Uint8Array, exactly 32 bytes) or its standard base64 form
 * (44 chars with padding) and returns a fresh Buffer. Throws MM_ERR_LENGTH / MM_ERR_BAD_KEY.
 */
export function rawKey (key: Uint8Array | string, what: string): Buffer {
  if (typeof key === 'string') {
    if (!BASE64_32.test(key)) throw badKey(what)
    const raw = Buffer.from(key, 'base64')
    if (raw.length !== KEY_BYTES || raw.toString('base64') !== key) throw badKey(what)
    return raw
  }
  if (!(key instanceof Uint8Array)) throw badKey(what)
  if (key.length !== KEY_BYTES) throw lengthError(what, String(KEY_BYTES), key.length)
  return Buffer.from(key)
}

export function publicKeyObject (curve: KeyCurve, key: Uint8Array | string): KeyObject {
  return okpPublicKey(curve, rawKey(key, `${curve} public key`))
}

export function privateKeyObject (curve: KeyCurve, key: Uint8Array): KeyObject {
  const raw = rawKey(key, `${curve} private key`)
  try {
    return okpPrivateKey(curve, raw)
  } finally {
    raw.fill(0)
  }
}

/** The raw 32-byte public key of a KeyObject (public or private). */
export const rawPublic = (key: KeyObject): Buffer => okpRawPublic(key)

/** The raw 32-byte private key of a private KeyObject. */
export const rawPrivate = (key: KeyObject): Buffer => okpRawPrivate(key)

/** Derives the full pair from a raw private key (validates its length). */
export function keyPairFromPrivate (curve: KeyCurve, privateKey: Uint8Array): RawKeyPair {
  const obj = privateKeyObject(curve, privateKey)
  return { publicKey: rawPublic(obj), privateKey: Buffer.from(privateKey) }
}

/**
 * Private keys are 32 random bytes (any is valid for X25519 and Ed25519) with the public
 * keys derived from them, so the profile stores exactly the bytes it was made from.
 */
export function generateIdentity (): Identity {
  return identityFromPrivate(randomBytes(32), randomBytes(32))
}

/** Rebuilds an identity from its two private keys. */
export function identityFromPrivate (encPrivate: Uint8Array, signPrivate: Uint8Array): Identity {
  return { enc: keyPairFromPrivate('X25519', encPrivate), sign: keyPairFromPrivate('Ed25519', signPrivate) }
}

/** The server's UserKeys shape: base64 of the raw 32-byte public keys. */
export function publicKeys (identity: Identity): UserKeys {
  return {
    enc: rawKey(identity.enc.publicKey, 'X25519 public key').toString('base64'),
    sign: rawKey(identity.sign.publicKey, 'Ed25519 public key').toString('base64')
  }
}

/** Validates a UserKeys-like value (both keys base64 or raw of 32 bytes) and returns it as base64. */
export function normalizeUserKeys (keys: { enc: Uint8Array | string, sign: Uint8Array | string }): UserKeys {
  if (keys == null || typeof keys !== 'object') throw badKey('user keys')
  // parse both as public keys: also rejects 32 bytes that are not a point encoding node accepts
  publicKeyObject('X25519', keys.enc)
  publicKeyObject('Ed25519', keys.sign)
  return {
    enc: rawKey(keys.enc, 'X25519 public key').toString('base64'),
    sign: rawKey(keys.sign, 'Ed25519 public key').toString('base64')
  }
}

/** Hex SHA-256 over raw enc ‖ raw sign (64 bytes): userKeyFingerprint, which the server calls too. */
export function keyFingerprint (keys: { enc: Uint8Array | string, sign: Uint8Array | string }): string {
  return userKeyFingerprint(rawKey(keys.enc, 'X25519 public key'), rawKey(keys.sign, 'Ed25519 public key'))
}

/** "ab12 cd34 …": the hex fingerprint in groups of 4, for people to compare. */
export function humanFingerprint (fingerprint: string): string {
  if (!/^[0-9a-f]{64}$/.test(fingerprint)) {
    throw new MarshmelloError('MM_ERR_BAD_KEY', 'fingerprint is not 64 lowercase hex chars')
  }
  return fingerprint.match(/.{4}/g)!.join(' ')
}
