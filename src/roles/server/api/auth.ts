// The auth & users service (docs/ARCHITECTURE.md §8) as a route table (router.ts): register, login
// (issues a JWT), logout (revokes its jti), users' public E2E keys, and the internal
// routes a gateway running apart needs (token revocation status, user existence). It
// never parses a JWT itself: the caller is the user the gateway vouches for (over HTTP,
// believed only with the internal token). Every scrypt runs through one bounded gate
// (password-work.ts) and failed logins slow a name down without locking it
// (login-throttle.ts), PROTOCOL §6.1. Leaves out per-address limits (the server never
// learns addresses, P1; the gateway limits per circuit) and key history.

import { PASSWORD_MAX, PASSWORD_MIN } from '../../../limits.js'
import { MarshmelloError, lengthError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import { userKeyFingerprint } from '../../../onion/crypto/fingerprints.js'
import type { PrekeyUpload, UserKeys, UserRecord, UserStore } from '../../../storage/types.js'
import { requireCaller } from './http.js'
import { ok, type Route, type ServiceCall } from './router.js'
import type { ServiceRoutes } from './messages.js'
import { dummyHash, hashPassword, verifyPassword } from './password.js'
import { PasswordWork, type PasswordWorkInit } from './password-work.js'
import { checkUpload, prekeyRoutes, prekeyUploadSchema } from './prekeys.js'
import { LoginThrottle, type LoginThrottleInit } from './login-throttle.js'
import { USERNAME_INPUT, errorResponses, isWellFormedText, keysSchema } from './schemas.js'
import type { TokenService } from './tokens.js'
import { systemClock, type Clock } from '../../common/clock.js'

export interface AuthServiceOptions {
  users: UserStore
  tokens: TokenService
  logger?: Logger
  /** how often expired revocations are purged; default 1 h */
  purgeIntervalMs?: number
  /** the scrypt gate (a shared instance, or its bounds); default 2 running, 32 queued */
  passwordWork?: PasswordWork | PasswordWorkInit
  /** failed-login throttling per name (login-throttle.ts defaults) */
  loginThrottle?: LoginThrottleInit
  /** time for the throttle and the purge timer; default the system clock */
  clock?: Clock
}

/** Thrown at login for an unknown user AND for a wrong password: the two must look alike. */
const badCredentials = () => new MarshmelloError('MM_ERR_BAD_CREDENTIALS', 'wrong username or password')
/** Thrown when a named user does not exist. */
const unknownUser = () => new MarshmelloError('MM_ERR_USER_UNKNOWN', 'no such user')

const userResponse = {
  type: 'object',
  properties: { username: { type: 'string' } },
  required: ['username'],
} as const

const keysResponse = {
  type: 'object',
  properties: {
    username: { type: 'string' },
    keys: { anyOf: [{ type: 'null' }, keysSchema] },
    fingerprint: { type: ['string', 'null'] },
  },
  required: ['username', 'keys', 'fingerprint'],
} as const

const registerBody = {
  type: 'object',
  properties: {
    username: { type: 'string', pattern: USERNAME_INPUT },
    password: { type: 'string', minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX },
    keys: keysSchema,
    /** the first prekeys (PROTOCOL §11.2), so others can start a session before this user ever signs in */
    prekeys: prekeyUploadSchema,
  },
  required: ['username', 'password'],
} as const

const loginBody = {
  type: 'object',
  properties: {
    username: { type: 'string', pattern: USERNAME_INPUT },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
  },
  required: ['username', 'password'],
} as const

/** Thrown when a password holds a lone surrogate (it would hash like U+FFFD, colliding with others). */
function checkPassword (password: string): void {
  if (!isWellFormedText(password)) throw new MarshmelloError('MM_ERR_BAD_TEXT', 'password must be well-formed Unicode')
}

/** base64 of a raw 32-byte public key -> bytes, with the exact complaint when it is not */
export function decodeKey (b64: string, what: string): Buffer {
  const raw = Buffer.from(b64, 'base64')
  if (raw.length !== 32 || raw.toString('base64') !== b64) throw lengthError(`${what} public key (base64)`, '32', raw.length)
  return raw
}

/** hex SHA-256 over the raw enc key then the raw sign key (what `/whois` shows) */
export function keyFingerprint (keys: UserKeys): string {
  return userKeyFingerprint(decodeKey(keys.enc, 'enc'), decodeKey(keys.sign, 'sign'))
}

function keysView (user: UserRecord) {
  return { username: user.username, keys: user.keys, fingerprint: user.keys === null ? null : keyFingerprint(user.keys) }
}

function tokenOf (call: ServiceCall): { jti: string, expiresAt: number } {
  const jti = call.tokenId
  const exp = call.tokenExp
  if (typeof jti !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(jti) || typeof exp !== 'string' || !/^[0-9]{1,16}$/.test(exp)) {
    throw new MarshmelloError('MM_ERR_UNAUTHENTICATED', 'sign in first')
  }
  return { jti, expiresAt: Number(exp) }
}

export async function authRoutes (opts: AuthServiceOptions): Promise<ServiceRoutes> {
  const { users, tokens } = opts
  const clock = opts.clock ?? systemClock
  const logger = opts.logger ?? silentLogger
  // every scrypt in this service, bounded (PROTOCOL §6.1)
  const work = opts.passwordWork instanceof PasswordWork ? opts.passwordWork : new PasswordWork(opts.passwordWork)
  // The server cannot limit guessers by address (it never learns one, P1), so failed
  // logins slow their name down, known or not (no enumeration): a delay before the
  // check, never a refusal of the right password.
  const throttle = new LoginThrottle(opts.loginThrottle, clock)
  // made before the first login, so an unknown name costs one scrypt like a known one
  const dummy = await dummyHash()

  const purge = clock.setInterval(() => {
    users.purgeRevoked(clock.now()).catch(err => logger.warn('purging revoked tokens failed', { err }))
  }, opts.purgeIntervalMs ?? 60 * 60 * 1000)

  const routes: Route[] = [
    {
      method: 'POST',
      url: '/v1/auth/register',
      schema: { body: registerBody, response: { 201: userResponse, ...errorResponses } },
      async handler ({ body: input }) {
        const body = input as { username: string, password: string, keys?: UserKeys, prekeys?: PrekeyUpload }
        checkPassword(body.password)
        if (body.keys !== undefined) keyFingerprint(body.keys) // validates both keys
        if (body.prekeys !== undefined) {
          if (body.keys === undefined) throw new MarshmelloError('MM_ERR_NO_KEYS', 'prekeys need identity keys (keys) in the same sign-up')
          checkUpload(body.keys, body.prekeys)
        }
        const username = body.username.toLowerCase()
        // hashed before the name is checked: a taken name costs the same scrypt as a free one
        const passwordHash = await work.run(() => hashPassword(body.password))
        const user = await users.create({ username, passwordHash, keys: body.keys ?? null })
        if (body.prekeys !== undefined) await users.addPrekeys(user.username, body.prekeys)
        return { status: 201, body: { username: user.username } }
      },
    },
    {
      method: 'POST',
      url: '/v1/auth/login',
      schema: {
        body: loginBody,
        response: {
          200: {
            type: 'object',
            properties: { token: { type: 'string' }, expiresAt: { type: 'number' }, username: { type: 'string' } },
            required: ['token', 'expiresAt', 'username'],
          },
          ...errorResponses,
        },
      },
      async handler ({ body: input }) {
        const body = input as { username: string, password: string }
        checkPassword(body.password)
        const name = body.username.toLowerCase()
        await throttle.wait(name)
        const user = await users.get(name)
        // an unknown name is checked against the dummy hash: the same scrypt, the same gate
        const good = await work.run(() => verifyPassword(body.password, user?.passwordHash ?? dummy))
        if (user === undefined || !good) {
          throttle.failed(name)
          throw badCredentials()
        }
        const issued = await tokens.issue(user.username)
        return ok({ token: issued.token, expiresAt: issued.expiresAt, username: user.username })
      },
    },
    {
      method: 'POST',
      url: '/v1/auth/logout',
      async handler ({ call }) {
        requireCaller(call)
        const { jti, expiresAt } = tokenOf(call)
        await users.revokeToken(jti, expiresAt)
        return { status: 204 }
      },
    },
    {
      method: 'GET',
      url: '/v1/users/:name/keys',
      schema: {
        params: {
          type: 'object',
          properties: { name: { type: 'string', anyOf: [{ pattern: USERNAME_INPUT }, { const: 'me' }] } },
          required: ['name'],
        },
        response: { 200: keysResponse, ...errorResponses },
      },
      async handler ({ params, call }) {
        const username = params.name === 'me' ? requireCaller(call) : params.name.toLowerCase()
        const user = await users.get(username)
        if (user === undefined) throw unknownUser()
        return ok(keysView(user))
      },
    },
    {
      method: 'PUT',
      url: '/v1/users/me/keys',
      schema: { body: keysSchema, response: { 200: keysResponse, ...errorResponses } },
      async handler ({ body, call }) {
        const username = requireCaller(call)
        const keys = body as UserKeys
        keyFingerprint(keys)
        await users.setKeys(username, { enc: keys.enc, sign: keys.sign })
        const user = await users.get(username)
        if (user === undefined) throw unknownUser()
        return ok(keysView(user))
      },
    },

    ...prekeyRoutes(users, () => clock.now()),

    /* internal: used by a gateway or messages service running in another process */
    {
      method: 'POST',
      url: '/internal/token-status',
      schema: {
        body: { type: 'object', properties: { jti: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['jti'] },
        response: { 200: { type: 'object', properties: { revoked: { type: 'boolean' } }, required: ['revoked'] }, ...errorResponses },
      },
      async handler ({ body }) { return ok({ revoked: await users.isTokenRevoked((body as { jti: string }).jti) }) },
    },
  ]
  return { routes, close: () => purge.cancel(), stats: () => {
    const w = work.stats
    return { passwordChecksRunning: w.running, passwordChecksQueued: w.queued, passwordChecksRefused: w.refused, passwordChecksDone: w.done, loginsDelayed: throttle.waiting }
  } }
}
