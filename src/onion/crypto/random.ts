// Randomness from the operating system's CSPRNG (node:crypto): bytes, integers and the
// textual random ids the roles use (channel ids, client ids, temporary file names,
// JWT ids). Pooled padding randomness for cells is primitives.ts's fillRandomPadding.
import { randomBytes as nodeRandomBytes, randomInt as nodeRandomInt } from 'node:crypto'

export const randomBytes = (n: number): Buffer => nodeRandomBytes(n)

/** A uniform integer in [min, max) (one argument: [0, max)); max - min at most 2^48. */
export function randomInt (min: number, max?: number): number {
  return max === undefined ? nodeRandomInt(min) : nodeRandomInt(min, max)
}

/** `n` random bytes as lowercase hex (2n characters). */
export const randomHex = (n: number): string => nodeRandomBytes(n).toString('hex')

/** `n` random bytes as base64url without padding. */
export const randomBase64url = (n: number): string => nodeRandomBytes(n).toString('base64url')
