// Fingerprints that two parties must compute byte for byte alike, file checksums, and
// constant-time comparison of secrets given as strings. Relay identity (RSA SPKI) and
// directory (Ed25519) fingerprints are primitives.ts's rsaFingerprint / ed25519Fingerprint;
// certificate fingerprints are certificate.ts's.
import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * A user's end-to-end key fingerprint: hex SHA-256 over raw X25519 enc ‖ raw Ed25519
 * sign (64 bytes). The server (api/auth.ts) and the client (e2e/keys.ts) both call this.
 */
export function userKeyFingerprint (enc: Uint8Array, sign: Uint8Array): string {
  return createHash('sha256').update(enc).update(sign).digest('hex')
}

/** Lowercase hex SHA-256 of `bytes` (file checksums). */
export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/**
 * A constant-time test against one secret string (a token): both sides are hashed first,
 * so neither the contents nor the lengths leak through timing. The expected side is
 * hashed once, here.
 */
export function secretMatcher (expected: string): (given: string) => boolean {
  const want = digest(expected)
  return (given) => timingSafeEqual(digest(given), want)
}

/** secretMatcher(expected)(given), for a secret compared once. */
export const secretsEqual = (expected: string, given: string): boolean => secretMatcher(expected)(given)
