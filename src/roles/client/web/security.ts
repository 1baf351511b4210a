// The local web UI's front door (docs/ARCHITECTURE.md §10): a random per-run token, compared in
// constant time; Host must be 127.0.0.1:PORT (DNS rebinding) and Origin, when sent,
// http://127.0.0.1:PORT (cross-site requests); writes must be JSON (no CSRF through
// form posts); and the security headers every answer carries. Routes live in app.ts.
import { randomBase64url } from '../../../onion/crypto/random.js'
import { secretsEqual } from '../../../onion/crypto/fingerprints.js'
import type { FastifyReply, FastifyRequest } from 'fastify'

export const TOKEN_HEADER = 'x-marshmello-token'

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

/** 32 random bytes, base64url: the per-run secret the page must send with every API call */
export const newToken = (): string => randomBase64url(32)

/** constant time (secretsEqual compares SHA-256 digests, equal in length whatever was sent) */
export function tokenMatches (expected: string, given: unknown): boolean {
  return typeof given === 'string' && secretsEqual(expected, given)
}

export interface GuardInit {
  token: string
  /** the port the UI listens on (known only after listen when it is 0) */
  port: () => number
}

export type Refusal = { code: string, message: string } | null

/** why a request is refused, or null; `api` requests also need the token and JSON writes */
export function refuse (req: Pick<FastifyRequest, 'headers' | 'method'>, init: GuardInit, api: boolean): Refusal {
  const self = `127.0.0.1:${init.port()}`
  if (req.headers.host !== self) return { code: 'MM_ERR_WEB_HOST', message: `this UI answers only to Host ${self}` }
  const origin = req.headers.origin
  if (origin !== undefined && origin !== `http://${self}`) return { code: 'MM_ERR_WEB_ORIGIN', message: 'cross-origin requests are refused' }
  if (!api) return null
  if (!tokenMatches(init.token, req.headers[TOKEN_HEADER])) return { code: 'MM_ERR_WEB_TOKEN', message: 'missing or wrong token: open the link printed by `marshmello chat --web`' }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type !== 'application/json') return { code: 'MM_ERR_WEB_CONTENT_TYPE', message: 'requests that change something must be application/json' }
  }
  return null
}

/** onRequest hook: every answer gets the security headers; refused requests a 403 */
export function guardHook (init: GuardInit) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    reply.headers(SECURITY_HEADERS)
    const path = req.url.split('?')[0]
    const r = refuse(req, init, path === '/api' || path.startsWith('/api/'))
    if (r) return reply.code(403).type('application/json').send({ error: r })
  }
}
