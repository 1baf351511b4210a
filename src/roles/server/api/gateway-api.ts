// The public API the onion's final hop serves (docs/ARCHITECTURE.md §8 "gateway"): checks the
// bearer JWT on every /v1 route but register and login, then forwards the request
// untouched to the auth or messages service with the internal token and the caller's
// name. Only content-type travels upstream: client-sent x-marshmello-* headers, and
// every other header, are dropped. Requests that come on a circuit are held to that
// circuit's budgets (circuit-limits.ts, PROTOCOL §6.1). Terminating the onion is the caller's job.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { MarshmelloError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import { BODY_LIMIT, HEADER_TOKEN_EXP, HEADER_TOKEN_ID, HEADER_USER, JSON_TYPE, bytesApp, errorReply, headerOf, serveBytes, type BytesCall, type BytesReply } from './http.js'
import type { TokenService } from './tokens.js'
import type { Upstream } from './upstream.js'
import { CircuitLimits, type CircuitLimitsInit } from './circuit-limits.js'
import { systemClock, type Clock } from '../../common/clock.js'
import { LRUCache } from 'lru-cache'

export { buildServiceApp, createServices, type ServiceAppInit, type ServiceName, type Services } from './service-app.js'
export { httpUpstream, inProcessUpstream, remoteRevocationCheck, type Upstream, type UpstreamRequest, type UpstreamResponse } from './upstream.js'

export interface GatewayApiInit {
  tokens: TokenService
  upstream: { auth: Upstream, messages: Upstream }
  logger?: Logger
  /** upstream timeout for long-polls (requests with wait>0); default 35 s */
  longPollTimeoutMs?: number
  /** per-circuit budgets (circuit-limits.ts defaults) */
  circuitLimits?: CircuitLimitsInit
  /** time for the budgets; default the system clock */
  clock?: Clock
}

const SERVICE_OF: Record<string, 'auth' | 'messages'> = {
  auth: 'auth', users: 'auth', rooms: 'messages', dms: 'messages',
}
/** every path segment of the API is [A-Za-z0-9_-]: no dots, no percent-encoding, nothing to normalise */
const PATH = /^\/v1(\/[A-Za-z0-9_-]+)+$/
const PUBLIC = new Set(['POST /v1/auth/register', 'POST /v1/auth/login', 'POST /v1/dms/sealed', 'GET /v1/dms/token-key'])
/**
 * public without a password: a contact's identity keys and prekey bundle (PROTOCOL §11.2)
 * are looked up without a token, so the lookup names no account ('me' still needs one)
 */
const PUBLIC_PATTERNS = [/^POST \/v1\/users\/[A-Za-z0-9_-]+\/prekeys\/claim$/, /^GET \/v1\/users\/(?!me\/)[A-Za-z0-9_-]+\/keys$/]
const isPublicRoute = (key: string): boolean => PUBLIC.has(key) || PUBLIC_PATTERNS.some(p => p.test(key))
/** requests that must come without a JWT, on a circuit that carries no identified request (PROTOCOL §12.1) */
const ANONYMOUS = new Set(['POST /v1/dms/sealed', 'GET /v1/dms/token-key'])
/** requests that name their user without a JWT */
const IDENTIFYING = new Set(['POST /v1/auth/register', 'POST /v1/auth/login'])
const BEARER = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/i
/** upstream timeout for register and login (login-throttle.ts: at most 8 s of delay, then the scrypt gate) */
const PASSWORD_TIMEOUT_MS = 15_000

/** Thrown when a protected route is called without a well-formed bearer token. */
const noToken = () => new MarshmelloError('MM_ERR_TOKEN', 'send Authorization: Bearer <token>')

export interface GatewayRequest extends BytesCall {
  authorization?: string
  /**
   * the circuit the request came on (an opaque id from the final hop), so the circuit's
   * budgets apply; absent on the loopback direct API and in-process tools, which have none
   */
  circuit?: string
}

export type GatewayResponse = BytesReply

export type Gateway = (req: GatewayRequest) => Promise<GatewayResponse>

const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH'])
const json = (status: number, value: unknown): GatewayResponse => ({ status, contentType: JSON_TYPE, body: Buffer.from(JSON.stringify(value)) })
const HEALTH = JSON.stringify({ ok: true, service: 'gateway' })

/**
 * The gateway as one async function, with no HTTP framework in between: the onion's
 * final hop and the direct API call it for every request (profiles of a busy server
 * showed a framework pass here, on top of the service's own, as a tenth of its CPU).
 * Never throws: errors become the API's `{ error: { code, message } }` shape.
 */
export function createGateway (init: GatewayApiInit): Gateway {
  const logger = init.logger ?? silentLogger
  const limits = new CircuitLimits(init.circuitLimits, init.clock ?? systemClock)
  // what each circuit has carried: identified requests (a JWT, register, login) or anonymous
  // ones; never both (PROTOCOL §12.1), so a sealed send cannot share a circuit with its sender's account
  const circuitKind = new LRUCache<string, 'identified' | 'anonymous'>({ max: init.circuitLimits?.maxCircuits ?? 100_000 })
  return async function gateway (req) {
    let release: (() => void) | undefined
    try {
      const q = req.url.indexOf('?')
      const path = q === -1 ? req.url : req.url.slice(0, q)
      const route = `${req.method} ${path}`
      const isPublic = isPublicRoute(route)
      if (ANONYMOUS.has(route) && req.authorization !== undefined) {
        /** Thrown when a sealed send or the token key fetch carries a JWT (or any Authorization). */
        throw new MarshmelloError('MM_ERR_SEALED_IDENTIFIED', 'a sealed send carries no Authorization header: send it without your token, on a circuit of its own')
      }
      if (req.circuit !== undefined) {
        const kind = req.authorization !== undefined || IDENTIFYING.has(route) ? 'identified' : 'anonymous'
        const had = circuitKind.get(req.circuit)
        if (had !== undefined && had !== kind) {
          /** Thrown when one circuit carries both identified and anonymous requests. */
          throw new MarshmelloError('MM_ERR_CIRCUIT_MIXED', `this circuit carried ${had} requests; send ${kind} ones on another circuit`)
        }
        if (had === undefined) circuitKind.set(req.circuit, kind)
      }
      // every request on a circuit counts; a register or login (IDENTIFYING) also against its password budget (PROTOCOL §6.1)
      if (req.circuit !== undefined) release = limits.admit(req.circuit, IDENTIFYING.has(route))
      return await dispatch(req, q, path, isPublic)
    } catch (err) {
      return errorReply(err, logger, req.method)
    } finally {
      release?.()
    }
  }

  async function dispatch (req: GatewayRequest, q: number, path: string, isPublic: boolean): Promise<GatewayResponse> {
    if (path === '/healthz' && req.method === 'GET') return { status: 200, contentType: JSON_TYPE, body: Buffer.from(HEALTH) }
    const service = METHODS.has(req.method) && PATH.test(path) ? SERVICE_OF[path.split('/')[2]] : undefined
    if (service === undefined) return json(404, NOT_FOUND)
    if (req.body !== undefined && req.body.length > BODY_LIMIT) throw tooLarge()

    const headers: Record<string, string> = {}
    if (req.contentType !== undefined) headers['content-type'] = req.contentType
    if (!isPublic) {
      const m = BEARER.exec(req.authorization ?? '')
      if (m === null) throw noToken()
      const who = await init.tokens.verify(m[1])
      headers[HEADER_USER] = who.username
      headers[HEADER_TOKEN_ID] = who.jti
      headers[HEADER_TOKEN_EXP] = String(who.expiresAt)
    }
    const longPoll = q !== -1 && new URLSearchParams(req.url.slice(q + 1)).getAll('wait').some(w => /^0*[1-9]/.test(w))
    const res = await init.upstream[service].request({
      method: req.method,
      url: req.url,
      headers,
      body: req.body !== undefined && req.body.length > 0 ? req.body : undefined,
      // a login may wait out its name's throttle delay (≤ 8 s) and the scrypt queue first
      timeoutMs: longPoll ? init.longPollTimeoutMs ?? 35_000 : isPublic ? PASSWORD_TIMEOUT_MS : undefined,
      signal: req.signal,
    })
    return { status: res.statusCode, contentType: res.headers['content-type'], body: res.statusCode === 204 ? Buffer.alloc(0) : res.body }
  }
}

const NOT_FOUND = { error: { code: 'MM_ERR_NOT_FOUND', message: 'no such route' } }
/** Thrown when a request body is over the API's limit. */
const tooLarge = () => new MarshmelloError('MM_ERR_TOO_LARGE', `request body is larger than ${BODY_LIMIT} bytes`)

/** The gateway as a fastify app (tests and tools inject into it; the server calls createGateway directly). */
export function buildGatewayApi (init: GatewayApiInit): FastifyInstance {
  const gateway = createGateway(init)
  // bodies are forwarded as bytes; the service parses and validates them
  const app = bytesApp(init.logger ?? silentLogger)

  app.get('/healthz', (request, reply) => serveGateway(gateway, request, reply))
  app.route({ method: [...METHODS] as 'GET'[], url: '/v1/*', handler: (request, reply) => serveGateway(gateway, request, reply) })
  return app
}

/** answers a fastify request with the gateway (the gateway app above and the server's direct API) */
export function serveGateway (gateway: Gateway, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  return serveBytes(reply, signal => gateway({
    method: request.method,
    url: request.url,
    contentType: headerOf(request.headers['content-type']),
    authorization: request.headers.authorization,
    body: Buffer.isBuffer(request.body) ? request.body : undefined,
    signal,
  }))
}
