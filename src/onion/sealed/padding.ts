// Padding of a sealed DM's plaintext to one of a few sizes before it is encrypted
// (docs/PROTOCOL.md §12.4), so the stored ciphertext says which bucket a message is in
// and nothing finer. The scheme is ISO/IEC 7816-4 (Signal pads message content the
// same way): the bytes, one 0x80, then zeros up to the bucket. Bytes only.

import { MarshmelloError } from '../../errors.js'

/** every sealed plaintext is exactly one of these lengths */
export const PAD_BUCKETS = [1024, 4096, 16384, 32768] as const

/** the bucket a plaintext of `n` bytes is padded to (n + 1 for the 0x80 marker) */
export function paddedLength (n: number): number {
  const b = PAD_BUCKETS.find((x) => x >= n + 1)
  if (b === undefined) throw new MarshmelloError('MM_ERR_TOO_LARGE', `expected a sealed plaintext of at most ${PAD_BUCKETS.at(-1)! - 1} bytes, got ${n}`)
  return b
}

export function pad (plain: Uint8Array): Buffer {
  const out = Buffer.alloc(paddedLength(plain.length))
  out.set(plain)
  out[plain.length] = 0x80
  return out
}

/** the original bytes; undefined when `padded` is not a bucket length or not padded this way */
export function unpad (padded: Uint8Array): Buffer | undefined {
  if (!(PAD_BUCKETS as readonly number[]).includes(padded.length)) return undefined
  let i = padded.length - 1
  while (i >= 0 && padded[i] === 0) i--
  if (i < 0 || padded[i] !== 0x80) return undefined
  return Buffer.from(padded.subarray(0, i))
}
