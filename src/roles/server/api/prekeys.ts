// PQXDH prekeys on the auth & users service (docs/PROTOCOL.md §11.2, Signal PQXDH §3.2): a
// signed-in user uploads a signed prekey, a last-resort ML-KEM-768 prekey and batches of
// one-time prekeys; anyone claims a bundle for a name WITHOUT signing in (the client fetches
// it over a fresh circuit carrying no token, so the server cannot tie the lookup to an
// account), and each one-time prekey is handed out once (UserStore.claimPrekeys). Every key
// and signature is checked against the user's identity keys before it is stored, so the
// server never hands out a prekey its owner did not sign. One-time prekeys are handed out at
// most ONE_TIME_PER_NAME per name (a burst, then a slow refill): claims beyond it get the
// bundle with the last-resort ML-KEM key and no one-time X25519 key (PQXDH §4.9 "the
// last-resort"), so an anonymous claimer cannot drain a user's one-time keys faster than
// that, and the user's own uploads refill them.

import { MarshmelloError } from '../../../errors.js'
import { MLKEM_PUBLIC_BYTES } from '../../../onion/crypto/mlkem.js'
import { verifyPrekey, type IdentityPublic, type PrekeyKind } from '../../../onion/crypto/pqxdh.js'
import type { PrekeyUpload, StoredPrekey, UserKeys, UserStore } from '../../../storage/types.js'
import { requireCaller } from './http.js'
import { ok, type Route } from './router.js'
import { USERNAME_INPUT, errorResponses } from './schemas.js'
import { TokenBuckets } from '../../common/limits.js'

/** per upload, and the most one user may have stored of each one-time kind */
export const MAX_UPLOAD_ONE_TIME = 50
export const MAX_UPLOAD_ONE_TIME_KEM = 20
export const MAX_STORED_ONE_TIME = 100
/**
 * One-time prekeys handed out per name: a burst of 10, then one per 6 minutes (10 an hour),
 * across all claimers (claims carry no identity to meter them by). A user meets at most
 * that many new contacts an hour with one-time keys; past it, sessions still start, on
 * the signed and last-resort prekeys.
 */
export const ONE_TIME_PER_NAME = { perSecond: 1 / 360, burst: 10 }

const B64 = '^[A-Za-z0-9+/]*={0,2}$'
const prekey = (signed: boolean, keyChars: number) => ({
  type: 'object',
  properties: {
    id: { type: 'integer', minimum: 0, maximum: 0xffffffff },
    key: { type: 'string', pattern: B64, minLength: keyChars, maxLength: keyChars },
    ...(signed ? { signature: { type: 'string', pattern: B64, minLength: 88, maxLength: 88 } } : {})
  },
  required: signed ? ['id', 'key', 'signature'] : ['id', 'key'],
  additionalProperties: false
} as const)
const EC_CHARS = 44
const KEM_CHARS = Math.ceil(MLKEM_PUBLIC_BYTES / 3) * 4

const uploadBody = {
  type: 'object',
  properties: {
    signedPrekey: prekey(true, EC_CHARS),
    lastResortKem: prekey(true, KEM_CHARS),
    oneTime: { type: 'array', maxItems: MAX_UPLOAD_ONE_TIME, items: prekey(false, EC_CHARS) },
    oneTimeKem: { type: 'array', maxItems: MAX_UPLOAD_ONE_TIME_KEM, items: prekey(true, KEM_CHARS) }
  },
  additionalProperties: false
} as const

const countsResponse = {
  type: 'object',
  properties: { oneTime: { type: 'integer' }, oneTimeKem: { type: 'integer' }, signedPrekeyId: { type: 'integer' }, lastResortId: { type: 'integer' } },
  required: ['oneTime', 'oneTimeKem']
} as const

const keyOut = { type: 'object', properties: { id: { type: 'integer' }, key: { type: 'string' }, signature: { type: 'string' } }, required: ['id', 'key'] } as const
const bundleResponse = {
  type: 'object',
  properties: {
    username: { type: 'string' },
    identity: { type: 'object', properties: { enc: { type: 'string' }, sign: { type: 'string' } }, required: ['enc', 'sign'] },
    signedPrekey: keyOut,
    kemPrekey: { type: 'object', properties: { ...keyOut.properties, lastResort: { type: 'boolean' } }, required: ['id', 'key', 'signature', 'lastResort'] },
    oneTimePrekey: keyOut
  },
  required: ['username', 'identity', 'signedPrekey', 'kemPrekey']
} as const

/** Thrown when an uploaded prekey is not what its owner signed, or the batch is over a bound. */
const badPrekey = (message: string) => new MarshmelloError('MM_ERR_BAD_PREKEY', message)

function raw (b64: string, bytes: number, what: string): Buffer {
  const b = Buffer.from(b64, 'base64')
  if (b.length !== bytes || b.toString('base64') !== b64) throw badPrekey(`${what} is not base64 of ${bytes} bytes`)
  return b
}

function identityOf (keys: UserKeys): IdentityPublic {
  return { dh: Buffer.from(keys.enc, 'base64'), sig: Buffer.from(keys.sign, 'base64') }
}

function checkSigned (identity: IdentityPublic, kind: PrekeyKind, k: StoredPrekey, what: string): void {
  const key = raw(k.key, kind === 'signed' ? 32 : MLKEM_PUBLIC_BYTES, `${what} ${k.id}`)
  const sig = raw(k.signature!, 64, `${what} ${k.id} signature`)
  if (!verifyPrekey(identity, kind, k.id, key, sig)) throw badPrekey(`${what} ${k.id}: the signature does not verify with the account's identity keys`)
}

function checkUnique (list: StoredPrekey[] | undefined, what: string): void {
  const ids = new Set((list ?? []).map(k => k.id))
  if (ids.size !== (list ?? []).length) throw badPrekey(`${what}: an id repeats`)
}

/** the JSON schema of an upload, also a sign-up's `prekeys` (auth.ts) */
export const prekeyUploadSchema = uploadBody

/**
 * Checks an upload against the owner's identity keys and the bounds (MM_ERR_BAD_PREKEY);
 * `held` is what the user already has stored.
 */
export function checkUpload (keys: UserKeys, u: PrekeyUpload, held: { oneTime: number, oneTimeKem: number } = { oneTime: 0, oneTimeKem: 0 }): void {
  const identity = identityOf(keys)
  if (u.signedPrekey) checkSigned(identity, 'signed', u.signedPrekey, 'signed prekey')
  if (u.lastResortKem) checkSigned(identity, 'kem-last-resort', u.lastResortKem, 'last-resort ML-KEM prekey')
  for (const k of u.oneTimeKem ?? []) checkSigned(identity, 'kem-one-time', k, 'one-time ML-KEM prekey')
  for (const k of u.oneTime ?? []) raw(k.key, 32, `one-time prekey ${k.id}`)
  checkUnique(u.oneTime, 'one-time prekeys')
  checkUnique(u.oneTimeKem, 'one-time ML-KEM prekeys')
  if (held.oneTime + (u.oneTime?.length ?? 0) > MAX_STORED_ONE_TIME || held.oneTimeKem + (u.oneTimeKem?.length ?? 0) > MAX_STORED_ONE_TIME) {
    throw badPrekey(`at most ${MAX_STORED_ONE_TIME} one-time prekeys of each kind may be stored`)
  }
}

export function prekeyRoutes (users: UserStore, now: () => number = Date.now): Route[] {
  // names metered at once: one entry is a few dozen bytes; an evicted name starts full again
  const handedOut = new TokenBuckets(ONE_TIME_PER_NAME.perSecond, ONE_TIME_PER_NAME.burst, 100_000, now)
  return [
    {
      method: 'PUT',
      url: '/v1/users/me/prekeys',
      schema: { body: uploadBody, response: { 200: countsResponse, ...errorResponses } },
      async handler ({ body, call }) {
        const username = requireCaller(call)
        const user = await users.get(username)
        if (user === undefined) throw new MarshmelloError('MM_ERR_USER_UNKNOWN', 'no such user')
        if (user.keys === null) throw new MarshmelloError('MM_ERR_NO_KEYS', 'upload identity keys before prekeys')
        const u = body as PrekeyUpload
        checkUpload(user.keys, u, await users.prekeyCounts(username))
        await users.addPrekeys(username, u)
        return ok(await users.prekeyCounts(username))
      }
    },
    {
      method: 'GET',
      url: '/v1/users/me/prekeys',
      schema: { response: { 200: countsResponse, ...errorResponses } },
      async handler ({ call }) {
        return ok(await users.prekeyCounts(requireCaller(call)))
      }
    },
    {
      // public (gateway-api.ts): no token, so the lookup is not tied to the account that makes it
      method: 'POST',
      url: '/v1/users/:name/prekeys/claim',
      schema: {
        params: { type: 'object', properties: { name: { type: 'string', pattern: USERNAME_INPUT } }, required: ['name'] },
        response: { 200: bundleResponse, ...errorResponses }
      },
      async handler ({ params }) {
        const name = params.name.toLowerCase()
        const user = await users.get(name)
        if (user === undefined) throw new MarshmelloError('MM_ERR_USER_UNKNOWN', 'no such user')
        const claimed = user.keys === null ? undefined : await users.claimPrekeys(name, { oneTime: handedOut.take(name) })
        if (user.keys === null || claimed === undefined) {
          throw new MarshmelloError('MM_ERR_NO_PREKEYS', `${name} has published no prekeys yet (an older client): ask them to sign in with a current one`)
        }
        return ok({ username: user.username, identity: user.keys, ...claimed })
      }
    }
  ]
}
