// Delivery tokens (docs/PROTOCOL.md §12.3), after Signal's unidentified access key: a
// recipient keeps a random 16-byte access key and gives it only to its contacts, inside
// sealed DMs. A sender proves it holds the key with the token derived from it; the server
// keeps only SHA-256 of the token (the verifier) and compares digests in constant time,
// so neither a stored row nor a database dump lets anyone send as a contact.

import { MarshmelloError } from '../../errors.js'
import { equalBytes, hkdfSha256, sha256 } from '../crypto/primitives.js'

export const ACCESS_KEY_BYTES = 16
export const DELIVERY_TOKEN_BYTES = 16
const INFO = Buffer.from('marshmello/sealed/delivery-token/v1', 'utf8')

/** token = HKDF-SHA256(ikm = access key, salt = empty, info = INFO, 16 bytes) */
export function deliveryToken (accessKey: Uint8Array): Buffer {
  if (accessKey.length !== ACCESS_KEY_BYTES) throw new MarshmelloError('MM_ERR_BAD_KEY', `expected an access key of ${ACCESS_KEY_BYTES} bytes, got length=${accessKey.length}`)
  return hkdfSha256(accessKey, Buffer.alloc(0), INFO, DELIVERY_TOKEN_BYTES)
}

/** what the server stores: SHA-256(token), 32 bytes */
export const tokenVerifier = (token: Uint8Array): Buffer => sha256(token)

/** whether `token` matches the stored verifier (digests compared in constant time) */
export function tokenMatches (verifier: Uint8Array, token: Uint8Array): boolean {
  if (verifier.length !== 32 || token.length !== DELIVERY_TOKEN_BYTES) return false
  return equalBytes(sha256(token), verifier)
}
