// Password hashing for the auth service: scrypt (onion/crypto/kdf.ts), async so
// the event loop keeps serving, encoded as `scrypt$N$r$p$salt_b64$hash_b64` (the
// format UserRecord.passwordHash documents). Verification compares in constant time
// and re-reads the cost parameters from the stored hash, so they can be raised later.
// Leaves out rate limiting and pepper/secret keys.

import { scryptKey, type ScryptParams } from '../../../onion/crypto/kdf.js'
import { equalBytes, randomBytes } from '../../../onion/crypto/primitives.js'

export type { ScryptParams }

/** docs/ARCHITECTURE.md §8: scrypt, never a fast hash. N=2^15 r=8 p=1 needs 32 MiB per hash. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 }
const KEY_LEN = 32
const SALT_LEN = 16
/** Refuse stored parameters beyond this (a corrupt or hostile record must not eat the memory). */
const MAX_N = 2 ** 20

export async function hashPassword (password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LEN)
  const hash = await scryptKey(password, salt, KEY_LEN, params)
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`
}

interface Parsed { params: ScryptParams, salt: Buffer, hash: Buffer }

function parse (encoded: string): Parsed | undefined {
  const parts = encoded.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined
  const [N, r, p] = parts.slice(1, 4).map(s => /^[0-9]{1,8}$/.test(s) ? Number(s) : NaN)
  if (!Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) return undefined
  if (!(r >= 1 && r <= 32) || !(p >= 1 && p <= 16)) return undefined
  const salt = Buffer.from(parts[4], 'base64')
  const hash = Buffer.from(parts[5], 'base64')
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return undefined
  return { params: { N, r, p }, salt, hash }
}

/** True when `password` matches; false for a wrong password or an unreadable hash (never throws on bad input). */
export async function verifyPassword (password: string, encoded: string): Promise<boolean> {
  const parsed = parse(encoded)
  if (parsed === undefined) return false
  const candidate = await scryptKey(password, parsed.salt, parsed.hash.length, parsed.params)
  return equalBytes(candidate, parsed.hash)
}

let dummy: Promise<string> | undefined
/**
 * A hash of a random password, made once per process: login verifies against it for
 * unknown users so that "no such user" costs the same scrypt as "wrong password".
 */
export function dummyHash (): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('base64'))
  return dummy
}
