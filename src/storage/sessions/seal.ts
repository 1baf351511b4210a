// Seals session values for an untrusted store: AES-256-GCM under a subkey derived by
// HKDF-SHA256 from the relay's own 32-byte key and a fresh random salt per value, with
// the session id as associated data (a value moved to another id fails to open).
// Layout: version(1)=1 | salt(16) | nonce(12) | ciphertext | tag(16).

import { aesGcmOpen, aesGcmSeal, hkdfSha256, randomBytes } from '../../onion/crypto/primitives.js'
import { storeConfigError, storeIntegrityError } from '../errors.js'

const VERSION = 1
const SALT = 16
const NONCE = 12
const TAG = 16
const INFO = Buffer.from('marshmello session seal v1')

export function checkSealKey (key: Uint8Array | undefined): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw storeConfigError(`expected encryptionKey to be a Uint8Array of length 32, got ${key instanceof Uint8Array ? `length=${key.length}` : typeof key}`)
  }
}

function subkey (key: Uint8Array, salt: Uint8Array): Buffer {
  // a fresh subkey per value keeps random nonces far from GCM's 2^32-messages-per-key bound
  return hkdfSha256(key, salt, INFO, 32)
}

export function seal (key: Uint8Array, id: string, plaintext: Uint8Array): Buffer {
  const salt = randomBytes(SALT)
  const nonce = randomBytes(NONCE)
  const k = subkey(key, salt)
  const body = aesGcmSeal(k, nonce, plaintext, Buffer.from(id, 'utf8')) // ciphertext ‖ tag
  k.fill(0)
  return Buffer.concat([Buffer.of(VERSION), salt, nonce, body])
}

/** Thrown (MM_ERR_STORE_INTEGRITY) when the value was altered, sealed for another id or under another key. */
export function open (key: Uint8Array, id: string, sealed: Uint8Array): Uint8Array {
  if (sealed.length < 1 + SALT + NONCE + TAG || sealed[0] !== VERSION) {
    throw storeIntegrityError(`session ${JSON.stringify(id)} holds no sealed value (length=${sealed.length})`)
  }
  const salt = sealed.subarray(1, 1 + SALT)
  const nonce = sealed.subarray(1 + SALT, 1 + SALT + NONCE)
  const k = subkey(key, salt)
  const plain = aesGcmOpen(k, nonce, sealed.subarray(1 + SALT + NONCE), Buffer.from(id, 'utf8'))
  k.fill(0)
  if (plain === null) throw storeIntegrityError(`session ${JSON.stringify(id)} failed its integrity check (altered, or sealed under another key)`)
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.length)
}
