// Password hashing for the auth service: scrypt from node:crypto (OpenSSL), async so
// the event loop keeps serving, encoded as `scrypt$N$r$p$salt_b64$hash_b64` (the
// format UserRecord.passwordHash documents). Verification compares in constant time
// and re-reads the cost parameters from the stored hash, so they can be raised later.
// Leaves out rate limiting and pepper/secret keys.

import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

export interface ScryptParams { N: number, r: number, p: number }

/** DESIGN §5: scrypt, never a fast hash. N=2^15 r=8 p=1 needs 32 MiB per hash. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 }
const KEY_LEN = 32
const SALT_LEN = 16
/** Refuse stored parameters beyond this (a corrupt or hostile record must not eat the memory). */
const MAX_N = 2 ** 20

function scryptAsync (password: string, salt: Buffer, keyLen: number, params: ScryptParams): Promise<Buffer> {
  // OpenSSL needs 128*N*r bytes plus a little; the default maxmem (32 MiB) is just too small for N=2^15.
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r * 2 + 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLen, opts, (err, key) => err ? reject(err) : resolve(key))
  })
}

export async function hashPassword (password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LEN)
  const hash = await scryptAsync(password, salt, KEY_LEN, params)
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
  const candidate = await scryptAsync(password, parsed.salt, parsed.hash.length, parsed.params)
  return timingSafeEqual(candidate, parsed.hash)
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
