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

/**
 * A uniformly random permutation of `items` (a copy): Fisher–Yates (Knuth, TAOCP
 * vol. 2, Algorithm P) with each swap index from randomInt, itself unbiased (rejection
 * sampling in node:crypto). Never sort with a random comparator: its permutations are
 * not equally likely and depend on the sort's algorithm.
 */
export function shuffle<T> (items: readonly T[]): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = nodeRandomInt(i + 1)
    const x = a[i]
    a[i] = a[j]
    a[j] = x
  }
  return a
}
