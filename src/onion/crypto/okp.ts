// X25519 and Ed25519 keys as raw 32-byte values and as node:crypto key objects: the one
// copy of their DER headers (RFC 8410 §7 and §10) and of the raw <-> key object
// conversions, used by the onion primitives (primitives.ts) and the end-to-end DM keys
// (roles/client/e2e/keys.ts). Leaves out the base64 and length rules of stored keys.
import { createPrivateKey, createPublicKey, diffieHellman, sign, verify, type KeyObject } from 'node:crypto'
import { MarshmelloError } from '../../errors.js'

export type OkpCurve = 'X25519' | 'Ed25519'
export type { KeyObject }

export interface RawKeyPair { publicKey: Buffer, privateKey: Buffer }

// DER headers of a PKCS#8 private key and an SPKI public key, followed by the 32 raw
// bytes (OIDs 1.3.101.110 for X25519, 1.3.101.112 for Ed25519).
export const PKCS8_PREFIX: Readonly<Record<OkpCurve, Buffer>> = {
  X25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
  Ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
}
export const SPKI_PREFIX: Readonly<Record<OkpCurve, Buffer>> = {
  X25519: Buffer.from('302a300506032b656e032100', 'hex'),
  Ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
}

/** A public key object from its 32 raw bytes (length checked by the caller). */
export function okpPublicKey (curve: OkpCurve, raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX[curve], raw]), format: 'der', type: 'spki' })
}

/** A private key object from its 32 raw bytes; the DER copy made on the way is erased. */
export function okpPrivateKey (curve: OkpCurve, raw: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_PREFIX[curve], raw])
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } finally {
    der.fill(0)
  }
}

/** The raw 32-byte public key of a key object (public or private). */
export function okpRawPublic (key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  const jwk = pub.export({ format: 'jwk' })
  if (typeof jwk.x !== 'string') throw new MarshmelloError('MM_ERR_INTERNAL', 'not an OKP key')
  return Buffer.from(jwk.x, 'base64url')
}

/** The raw 32-byte private key of a private key object. */
export function okpRawPrivate (key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' })
  if (typeof jwk.d !== 'string') throw new MarshmelloError('MM_ERR_INTERNAL', 'not an OKP private key')
  return Buffer.from(jwk.d, 'base64url')
}

/** X25519 agreement of two key objects; throws (node's error) for a low-order peer key. */
export const x25519Agree = (privateKey: KeyObject, publicKey: KeyObject): Buffer => diffieHellman({ privateKey, publicKey })

/** An Ed25519 signature with a private key object. */
export const ed25519SignKey = (privateKey: KeyObject, msg: Uint8Array): Buffer => sign(null, msg, privateKey)

/** Ed25519 verification with a public key object; false for a bad signature. */
export const ed25519VerifyKey = (publicKey: KeyObject, msg: Uint8Array, sig: Uint8Array): boolean => verify(null, msg, publicKey, sig)
