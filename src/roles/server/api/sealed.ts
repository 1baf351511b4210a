// Sealed sender at the server (docs/PROTOCOL.md §12): sender certificates for signed-in
// users (a per-start server certificate key, certified by the directory key that clients
// pin), the recipient's delivery settings (only the hash of its delivery token and the
// strangers switch), anonymous tokens (anon-tokens.ts), and the sealed send itself: a
// request with no JWT, on a circuit that carries no identified request (the gateway
// checks both), authorised by a delivery token or, for a stranger, an anonymous token.
// A stored sealed DM names its recipient only: no sender, a coarse server time, and an
// expiry after the retention period; the recipient's acknowledgement deletes it.

import { MarshmelloError } from '../../../errors.js'
import { ed25519KeyPair, sha256 } from '../../../onion/crypto/primitives.js'
import { randomInt } from '../../../onion/crypto/random.js'
import { DELIVERY_TOKEN_BYTES, tokenMatches } from '../../../onion/sealed/delivery-token.js'
import { PAD_BUCKETS } from '../../../onion/sealed/padding.js'
import { SEALED_OVERHEAD } from '../../../onion/sealed/sealed-envelope.js'
import { MAX_SENDER_CERT_MS, issueSenderCertificate, issueServerCertificate } from '../../../onion/sealed/sender-certificate.js'
import type { MessageStore, UserStore } from '../../../storage/types.js'
import { TokenBuckets } from '../../common/limits.js'
import type { Clock } from '../../common/clock.js'
import { AnonTokens, type AnonTokensInit } from './anon-tokens.js'
import { requireCaller } from './http.js'
import { ok, type Route } from './router.js'
import { MESSAGE_ID, USERNAME_INPUT, errorResponses } from './schemas.js'

/** a stored sealed DM's `from`: the empty string, which no username can be (src/names.ts) */
export const SEALED_FROM = ''
/** server receive times of sealed DMs are rounded down to this (PROTOCOL §12.6) */
export const RECEIVE_TIME_GRAIN_MS = 3600_000
export const DEFAULT_DM_RETENTION_MS = 30 * 24 * 3600_000
/** the envelope lengths a padded sealed DM can have, and nothing else is stored */
const ENVELOPE_LENGTHS = new Set(PAD_BUCKETS.map((b) => SEALED_OVERHEAD + b))
const B64URL = '^[A-Za-z0-9_-]+$'
const B64 = '^[A-Za-z0-9+/]+={0,2}$'

export interface SealedInit {
  /** the trust root's Ed25519 private key: the directory key whose fingerprint clients pin */
  rootPrivate: Uint8Array
  /** sender certificate lifetime; default and at most 24 h */
  senderCertMs?: number
  /** anonymous token budgets and epochs */
  anonTokens?: AnonTokensInit
  /** sealed DMs from strangers per recipient: per hour, and the burst; default 30, 10 */
  strangerPerHour?: number
  strangerBurst?: number
}

export interface SealedComponents {
  users: UserStore
  messages: MessageStore
  clock: Clock
  /** expiry of a stored DM (the retention period) */
  retentionMs: number
}

/** Thrown when a route needs a user who has not uploaded end-to-end keys yet. */
const noKeys = () => new MarshmelloError('MM_ERR_NO_KEYS', 'upload your end-to-end keys first (PUT /v1/users/me/keys)')
/** Thrown when a base64 field does not decode to what it must be. */
const badField = (what: string) => new MarshmelloError('MM_ERR_BAD_INPUT', `${what} is not canonical base64 of the right length`)

function decode (s: string, enc: 'base64' | 'base64url', what: string, length?: number): Buffer {
  const b = Buffer.from(s, enc)
  if (b.toString(enc) !== s || (length !== undefined && b.length !== length)) throw badField(what)
  return b
}

/** The sealed-sender routes (all under /v1/dms, so the gateway sends them to the messages service). */
export function sealedRoutes (init: SealedInit, c: SealedComponents): { routes: Route[], stats: () => Record<string, number> } {
  const certMs = Math.min(init.senderCertMs ?? MAX_SENDER_CERT_MS, MAX_SENDER_CERT_MS)
  // the server certificate key: new at every start (clients check the chain, so old certificates stay good)
  const serverKey = ed25519KeyPair()
  const keyId = randomInt(0x1_0000_0000)
  let serverCert: { bytes: Buffer, expires: number } | undefined
  const serverCertificate = (): Buffer => {
    const now = c.clock.now()
    if (serverCert === undefined || serverCert.expires - now < 7 * 24 * 3600_000) {
      const expires = now + 30 * 24 * 3600_000
      serverCert = { bytes: issueServerCertificate({ keyId, key: serverKey.publicKey, expires, rootPrivate: init.rootPrivate }), expires }
    }
    return serverCert.bytes
  }
  serverCertificate()
  const anon = new AnonTokens(init.anonTokens ?? {}, c.clock)
  const strangers = new TokenBuckets((init.strangerPerHour ?? 30) / 3600, init.strangerBurst ?? 10, 100_000, () => c.clock.now())
  const counts = { sealedStored: 0, sealedRefused: 0, acked: 0 }

  const routes: Route[] = [
    {
      method: 'POST',
      url: '/v1/dms/certificate',
      schema: { response: { 200: { type: 'object', properties: { certificate: { type: 'string' }, expires: { type: 'number' } }, required: ['certificate', 'expires'] }, ...errorResponses } },
      async handler ({ call }) {
        const me = requireCaller(call)
        const user = await c.users.get(me)
        if (user?.keys == null) throw noKeys()
        const now = c.clock.now()
        const expires = now + certMs
        const cert = issueSenderCertificate({ username: me, identityKey: decode(user.keys.enc, 'base64', 'identity key', 32), expires, now, serverCertificate: serverCertificate(), serverPrivate: serverKey.privateKey })
        return ok({ certificate: cert.toString('base64'), expires })
      },
    },
    {
      method: 'GET',
      url: '/v1/dms/settings',
      schema: { response: { 200: { type: 'object', properties: { allowStrangers: { type: 'boolean' }, hasDeliveryToken: { type: 'boolean' } }, required: ['allowStrangers', 'hasDeliveryToken'] }, ...errorResponses } },
      async handler ({ call }) {
        const a = await c.users.getSealedAccess(requireCaller(call))
        return ok({ allowStrangers: a?.allowStrangers ?? true, hasDeliveryToken: a?.verifier != null })
      },
    },
    {
      method: 'PUT',
      url: '/v1/dms/settings',
      schema: {
        body: {
          type: 'object',
          properties: { verifier: { type: 'string', pattern: B64, maxLength: 44 }, allowStrangers: { type: 'boolean' } },
          required: ['verifier', 'allowStrangers'],
          additionalProperties: false,
        },
        response: { ...errorResponses },
      },
      async handler ({ body, call }) {
        const me = requireCaller(call)
        const b = body as { verifier: string, allowStrangers: boolean }
        decode(b.verifier, 'base64', 'verifier', 32)
        await c.users.setSealedAccess(me, { verifier: b.verifier, allowStrangers: b.allowStrangers })
        return { status: 204 }
      },
    },
    {
      method: 'GET',
      url: '/v1/dms/token-key',
      schema: { response: { 200: { type: 'object', properties: { keyId: { type: 'string' }, publicKey: { type: 'string' }, epoch: { type: 'number' }, validUntil: { type: 'number' } }, required: ['keyId', 'publicKey', 'epoch', 'validUntil'] }, ...errorResponses } },
      async handler () {
        const k = await anon.publicKey()
        return ok({ keyId: k.keyId.toString('base64'), publicKey: k.publicKey.toString('base64'), epoch: k.epoch, validUntil: k.validUntil })
      },
    },
    {
      method: 'POST',
      url: '/v1/dms/tokens',
      schema: {
        body: {
          type: 'object',
          properties: { requests: { type: 'array', minItems: 1, maxItems: anon.maxBatch, items: { type: 'string', pattern: B64, maxLength: 400 } } },
          required: ['requests'],
          additionalProperties: false,
        },
        response: { 200: { type: 'object', properties: { responses: { type: 'array', items: { type: 'string' } } }, required: ['responses'] }, ...errorResponses },
      },
      async handler ({ body, call }) {
        const me = requireCaller(call)
        const requests = (body as { requests: string[] }).requests.map((r) => decode(r, 'base64', 'token request'))
        const responses = await anon.issue(me, requests)
        return ok({ responses: responses.map((r) => r.toString('base64')) })
      },
    },
    {
      method: 'POST',
      url: '/v1/dms/sealed',
      schema: {
        body: {
          type: 'object',
          properties: {
            to: { type: 'string', pattern: USERNAME_INPUT },
            envelope: { type: 'string', pattern: B64URL, maxLength: Math.ceil((SEALED_OVERHEAD + PAD_BUCKETS.at(-1)!) * 4 / 3) },
            deliveryToken: { type: 'string', pattern: B64URL, maxLength: 32 },
            anonToken: { type: 'string', pattern: B64URL, maxLength: 600 },
          },
          required: ['to', 'envelope'],
          additionalProperties: false,
        },
        response: {
          '2xx': { type: 'object', properties: { id: { type: 'string' }, receivedAt: { type: 'number' } }, required: ['id', 'receivedAt'] },
          ...errorResponses,
        },
      },
      async handler ({ body }) {
        const b = body as { to: string, envelope: string, deliveryToken?: string, anonToken?: string }
        const to = b.to.toLowerCase()
        const envelope = decode(b.envelope, 'base64url', 'envelope')
        if (!ENVELOPE_LENGTHS.has(envelope.length)) {
          counts.sealedRefused++
          throw new MarshmelloError('MM_ERR_SEALED', `a sealed envelope is padded to one of ${[...ENVELOPE_LENGTHS].join(', ')} bytes`)
        }
        const access = await c.users.getSealedAccess(to)
        if (access === undefined) throw new MarshmelloError('MM_ERR_USER_UNKNOWN', 'no such user')
        const digest = sha256(envelope).toString('base64url').slice(0, 32)
        try {
          if (b.deliveryToken !== undefined) {
            const token = decode(b.deliveryToken, 'base64url', 'delivery token', DELIVERY_TOKEN_BYTES)
            // digests compared in constant time (delivery-token.ts)
            if (access.verifier === null || !tokenMatches(Buffer.from(access.verifier, 'base64'), token)) {
              throw new MarshmelloError('MM_ERR_DELIVERY_TOKEN', 'the delivery token is not this recipient\'s')
            }
          } else if (b.anonToken !== undefined) {
            if (!access.allowStrangers) throw new MarshmelloError('MM_ERR_STRANGERS_REFUSED', 'this recipient takes sealed messages from contacts only')
            if (!strangers.take(to)) throw new MarshmelloError('MM_ERR_STRANGER_RATE', 'this recipient got many messages from strangers lately; try again later')
            await anon.redeem(decode(b.anonToken, 'base64url', 'anonymous token'), digest)
          } else {
            throw new MarshmelloError('MM_ERR_SEALED_UNAUTHORIZED', 'a sealed send needs the recipient\'s delivery token or an anonymous token')
          }
        } catch (err) {
          counts.sealedRefused++
          throw err
        }
        const now = c.clock.now()
        const receivedAt = Math.floor(now / RECEIVE_TIME_GRAIN_MS) * RECEIVE_TIME_GRAIN_MS
        const { message, created } = await c.messages.put({ from: SEALED_FROM, to, clientId: digest, body: b.envelope, sentAt: receivedAt, expiresAt: now + c.retentionMs })
        if (created) counts.sealedStored++
        return { status: created ? 201 : 200, body: { id: message.id, receivedAt: message.sentAt } }
      },
    },
    {
      method: 'POST',
      url: '/v1/dms/ack',
      schema: {
        body: {
          type: 'object',
          properties: { ids: { type: 'array', minItems: 1, maxItems: 200, items: { type: 'string', pattern: MESSAGE_ID } } },
          required: ['ids'],
          additionalProperties: false,
        },
        response: { 200: { type: 'object', properties: { deleted: { type: 'number' } }, required: ['deleted'] }, ...errorResponses },
      },
      async handler ({ body, call }) {
        const me = requireCaller(call)
        const deleted = await c.messages.deleteDms(me, (body as { ids: string[] }).ids)
        counts.acked += deleted
        return ok({ deleted })
      },
    },
  ]
  return {
    routes,
    stats: () => ({ ...counts, anonTokensIssued: anon.stats.issued, anonTokensRedeemed: anon.stats.redeemed, anonTokensRefused: anon.stats.refused }),
  }
}
