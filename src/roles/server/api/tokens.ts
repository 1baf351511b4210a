// Session tokens: HS256 JWTs (jose) with issuer, audience, subject = username, a
// random jti and an expiry; verification checks all of them plus revocation through
// an injected `isRevoked(jti)` (the UserStore locally, the auth service remotely), so
// the gateway can run apart from auth. The 32-byte secret lives 0600 in the data dir.
// Tokens are never logged; this file leaves refresh tokens and key rotation out.

import { randomBytes } from '../../../onion/crypto/primitives.js'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose'
import { LRUCache } from 'lru-cache'
import { MarshmelloError, isMarshmelloError } from '../../../errors.js'
import { isUsername } from '../../../names.js'

export const SECRET_BYTES = 32
export const DEFAULT_TOKEN_TTL_MS = 12 * 60 * 60 * 1000
/** longer strings are refused before any parsing */
const MAX_TOKEN_CHARS = 4096

export interface IssuedToken {
  token: string
  jti: string
  /** ms since epoch */
  expiresAt: number
}

export interface VerifiedToken {
  username: string
  jti: string
  /** the JWT `exp` claim: seconds since epoch */
  exp: number
  /** the same instant in ms since epoch */
  expiresAt: number
}

export interface TokenServiceInit {
  /** at least 32 bytes (loadOrCreateSecret) */
  secret: Uint8Array
  /** default 12 h; rounded up to whole seconds */
  ttlMs?: number
  /** default 'marshmello' */
  issuer?: string
  /** default 'marshmello-api' */
  audience?: string
}

export interface TokenServiceComponents {
  /** true when the token id was revoked (logout); may throw when the answer is unknown */
  isRevoked: (jti: string) => Promise<boolean>
  /** ms since epoch; default Date.now (tests pass a fake clock) */
  now?: () => number
}

/** Thrown when a token is missing, malformed, forged, for another audience, or revoked. */
const tokenError = () => new MarshmelloError('MM_ERR_TOKEN', 'invalid or revoked token')
/** Thrown when a token was valid but its expiry has passed. */
const expiredError = () => new MarshmelloError('MM_ERR_TOKEN_EXPIRED', 'token expired, sign in again')

export class TokenService {
  readonly ttlMs: number
  /** the secret imported once as a WebCrypto key: jose would re-import raw bytes on every call */
  private readonly key: Promise<CryptoKey>
  private readonly issuer: string
  private readonly audience: string
  private readonly isRevoked: (jti: string) => Promise<boolean>
  private readonly now: () => number

  constructor (init: TokenServiceInit, components: TokenServiceComponents) {
    if (!(init.secret instanceof Uint8Array) || init.secret.length < SECRET_BYTES) {
      throw new MarshmelloError('MM_ERR_CONFIG', `expected a token secret of at least ${SECRET_BYTES} bytes, got length=${init.secret?.length}`)
    }
    const ttl = init.ttlMs ?? DEFAULT_TOKEN_TTL_MS
    if (!Number.isFinite(ttl) || ttl <= 0) throw new MarshmelloError('MM_ERR_CONFIG', 'token ttlMs must be a positive number')
    this.key = globalThis.crypto.subtle.importKey('raw', Uint8Array.from(init.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
    this.ttlMs = ttl
    this.issuer = init.issuer ?? 'marshmello'
    this.audience = init.audience ?? 'marshmello-api'
    this.isRevoked = components.isRevoked
    this.now = components.now ?? Date.now
  }

  async issue (username: string): Promise<IssuedToken> {
    if (!isUsername(username)) throw new MarshmelloError('MM_ERR_VALIDATION', 'expected a lowercase username of 3-32 [a-z0-9_-]')
    const iat = Math.floor(this.now() / 1000)
    const exp = iat + Math.ceil(this.ttlMs / 1000)
    const jti = randomBytes(16).toString('base64url')
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(username)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setJti(jti)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(await this.key)
    return { token, jti, expiresAt: exp * 1000 }
  }

  /** tokens whose signature and claims were checked, by their exact text (expiry and revocation are re-checked on every use) */
  private readonly verified = new LRUCache<string, { sub: string, jti: string, exp: number }>({ max: 10_000 })

  async verify (token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS) throw tokenError()
    const known = this.verified.get(token)
    if (known) {
      if (known.exp * 1000 <= this.now()) { this.verified.delete(token); throw expiredError() }
      return this.checkRevoked(known.sub, known.jti, known.exp)
    }
    let payload
    try {
      ({ payload } = await jwtVerify(token, await this.key, {
        algorithms: ['HS256'],
        issuer: this.issuer,
        audience: this.audience,
        requiredClaims: ['sub', 'jti', 'exp', 'iat'],
        currentDate: new Date(this.now()),
      }))
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw expiredError()
      throw tokenError()
    }
    const { sub, jti, exp } = payload
    if (typeof sub !== 'string' || !isUsername(sub) || typeof jti !== 'string' || jti.length > 64 || typeof exp !== 'number') throw tokenError()
    this.verified.set(token, { sub, jti, exp })
    return this.checkRevoked(sub, jti, exp)
  }

  private async checkRevoked (sub: string, jti: string, exp: number): Promise<VerifiedToken> {
    let revoked: boolean
    try {
      revoked = await this.isRevoked(jti)
    } catch (err) {
      if (isMarshmelloError(err)) throw err
      throw new MarshmelloError('MM_ERR_REVOCATION_UNAVAILABLE', 'cannot check token revocation')
    }
    if (revoked) throw tokenError()
    return { username: sub, jti, exp, expiresAt: exp * 1000 }
  }
}

/**
 * Reads the token secret at `path`, or creates it (32 random bytes, mode 0600, its
 * directory 0700) when missing, so tokens stay valid across restarts.
 */
export async function loadOrCreateSecret (path: string): Promise<Uint8Array> {
  try {
    const existing = await readFile(path)
    if (existing.length < SECRET_BYTES) {
      throw new MarshmelloError('MM_ERR_CONFIG', `expected a token secret of at least ${SECRET_BYTES} bytes in ${path}, got length=${existing.length}`)
    }
    await chmod(path, 0o600).catch(() => {})
    return new Uint8Array(existing)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const secret = randomBytes(SECRET_BYTES)
  try {
    await writeFile(path, secret, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    // another process created it first: use theirs
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateSecret(path)
    throw err
  }
  return new Uint8Array(secret)
}
