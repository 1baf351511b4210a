// Shared by the onion tests (not a test): vector loading, error-code capture, and
// the fixed RSA identity recorded in onion-handshake.json (no key generation per file).
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isMarshmelloError } from '../../src/errors.js'

export const hex = (s: string): Buffer => Buffer.from(s, 'hex')

export function vectors<T = any> (name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/vectors/${name}`, import.meta.url), 'utf8')) as T
}

/**
 * Runs fn and returns the MarshmelloError code it threw; 'NO_THROW' when it returned,
 * 'NOT_MM:<name>' when it threw something untyped (a parser bug under P9).
 */
export function codeOf (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return isMarshmelloError(err) ? err.code : `NOT_MM:${(err as Error)?.name ?? typeof err}`
  }
  return 'NO_THROW'
}

/** counts of each outcome, for loops over thousands of mutations (one assertion, not thousands) */
export function tally (outcomes: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const o of outcomes) out[o] = (out[o] ?? 0) + 1
  return out
}

export function flipBit (b: Uint8Array, bit: number): Buffer {
  const c = Buffer.from(b)
  c[bit >>> 3] ^= 1 << (bit & 7)
  return c
}

const hs = vectors('onion-handshake.json')
/** the recorded RSA-2048 identity (SPKI / PKCS#8 DER) */
export const fixedIdentity = {
  publicDer: hex(hs.identityPublicSpki),
  privateDer: hex(hs.identityPrivatePkcs8),
  fingerprint: hex(hs.fingerprint),
}

/** a deterministic byte stream for vectors: SHA-256(label ‖ counter) blocks (never for real keys) */
export function detRng (label: string): (n: number) => Buffer {
  let counter = 0
  return (n: number) => {
    const out: Buffer[] = []
    let have = 0
    while (have < n) {
      const c = Buffer.alloc(4)
      c.writeUInt32BE(counter++)
      const block = createHash('sha256').update(label).update(c).digest()
      out.push(block)
      have += block.length
    }
    return Buffer.concat(out).subarray(0, n)
  }
}
