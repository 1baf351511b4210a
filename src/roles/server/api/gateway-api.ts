// The public API the onion's final hop serves (DESIGN §5 "gateway"): checks the
// bearer JWT on every /v1 route but register and login, then forwards the request
// untouched to the auth or messages service with the internal token and the caller's
// name. Only content-type travels upstream: client-sent x-marshmello-* headers, and
// every other header, are dropped. Terminating the onion is the caller's job.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { MarshmelloError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import { HEADER_TOKEN_EXP, HEADER_TOKEN_ID, HEADER_USER, baseFastifyOptions, errorHandler, notFoundHandler } from './http.js'
import { errorResponses, healthSchema } from './schemas.js'
import type { TokenService } from './tokens.js'
import type { Upstream } from './upstream.js'

export { buildServiceApp, type ServiceAppInit, type ServiceName } from './service-app.js'
export { httpUpstream, inProcessUpstream, remoteRevocationCheck, remoteUserExists, type Upstream, type UpstreamRequest, type UpstreamResponse } from './upstream.js'

export interface GatewayApiInit {
  tokens: TokenService
  upstream: { auth: Upstream, messages: Upstream }
  logger?: Logger
  /** upstream timeout for long-polls (requests with wait>0); default 35 s */
  longPollTimeoutMs?: number
}

const SERVICE_OF: Record<string, 'auth' | 'messages'> = {
  auth: 'auth', users: 'auth', rooms: 'messages', dms: 'messages', stats: 'messages',
}
/** every path segment of the API is [A-Za-z0-9_-]: no dots, no percent-encoding, nothing to normalise */
const PATH = /^\/v1(\/[A-Za-z0-9_-]+)+$/
const PUBLIC = new Set(['POST /v1/auth/register', 'POST /v1/auth/login'])
const BEARER = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/i

/** Thrown when a protected route is called without a well-formed bearer token. */
const noToken = () => new MarshmelloError('MM_ERR_TOKEN', 'auth', 'send Authorization: Bearer <token>', 401)

export function buildGatewayApi (init: GatewayApiInit): FastifyInstance {
  const logger = init.logger ?? silentLogger
  const app = Fastify(baseFastifyOptions())
  app.setErrorHandler(errorHandler(logger))
  app.setNotFoundHandler(notFoundHandler)
  // bodies are forwarded as bytes (bounded by bodyLimit); the service parses and validates them
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))

  app.get('/healthz', { schema: { response: { 200: healthSchema, ...errorResponses } } }, async () => ({ ok: true, service: 'gateway' }))

  async function forward (request: FastifyRequest, reply: FastifyReply) {
    const q = request.url.indexOf('?')
    const path = q === -1 ? request.url : request.url.slice(0, q)
    const service = PATH.test(path) ? SERVICE_OF[path.split('/')[2]] : undefined
    if (service === undefined) return notFoundHandler(request, reply)

    const headers: Record<string, string> = {}
    const type = request.headers['content-type']
    if (typeof type === 'string') headers['content-type'] = type
    if (!PUBLIC.has(`${request.method} ${path}`)) {
      const m = BEARER.exec(request.headers.authorization ?? '')
      if (m === null) throw noToken()
      const who = await init.tokens.verify(m[1])
      headers[HEADER_USER] = who.username
      headers[HEADER_TOKEN_ID] = who.jti
      headers[HEADER_TOKEN_EXP] = String(who.expiresAt)
    }

    const longPoll = q !== -1 && new URLSearchParams(request.url.slice(q + 1)).getAll('wait').some(w => /^0*[1-9]/.test(w))
    const gone = new AbortController()
    const onClose = () => { if (!reply.raw.writableEnded) gone.abort() }
    reply.raw.on('close', onClose)
    try {
      const res = await init.upstream[service].request({
        method: request.method,
        url: request.url,
        headers,
        body: Buffer.isBuffer(request.body) && request.body.length > 0 ? request.body : undefined,
        timeoutMs: longPoll ? init.longPollTimeoutMs ?? 35_000 : undefined,
        signal: gone.signal,
      })
      reply.code(res.statusCode)
      const resType = res.headers['content-type']
      if (resType !== undefined) reply.header('content-type', resType)
      return reply.send(res.statusCode === 204 ? undefined : res.body)
    } finally {
      reply.raw.off('close', onClose)
    }
  }

  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'], url: '/v1/*', handler: forward })
  return app
}
