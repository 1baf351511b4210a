// What every API app shares: the one error handler (MarshmelloError, schema
// validation and body-parser errors become `{ error: { code, message } }`, never a
// stack or a 5xx for bad input), the JSON 404, the internal-token guard that decides
// whether `x-marshmello-user` can be trusted, and the fastify options that keep
// bodies and headers out of logs. Routes and schemas live in the services.

import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { MarshmelloError, isMarshmelloError } from '../../../errors.js'
import type { Logger } from '../../../log.js'
import { isUsername } from '../../../names.js'

export const HEADER_INTERNAL = 'x-marshmello-internal'
export const HEADER_USER = 'x-marshmello-user'
/** set by the gateway on authenticated requests: the JWT's id and expiry (ms), for logout */
export const HEADER_TOKEN_ID = 'x-marshmello-token-id'
export const HEADER_TOKEN_EXP = 'x-marshmello-token-exp'

export const BODY_LIMIT = 64 * 1024

/** fastify options for every API app: no fastify logger (so no request or header logging), strict types. */
export function baseFastifyOptions (): FastifyServerOptions {
  return {
    // no fastify logger at all: request lines, headers and bodies are never logged
    logger: false,
    bodyLimit: BODY_LIMIT,
    // Types are checked, not coerced: `{"text": 5}` is a 400, not the string "5". Query
    // strings therefore use string patterns and are parsed by the handlers.
    ajv: { customOptions: { coerceTypes: false } },
    // a malformed URL (bad percent-encoding) gets our JSON shape too
    frameworkErrors: (err, _request, reply) => {
      (reply as FastifyReply).code(400).send({ error: { code: 'MM_ERR_BAD_URL', message: String(err.message).slice(0, 200) } })
    },
  }
}

interface PublicError { status: number, code: string, message: string }

export function toPublicError (err: unknown): PublicError {
  if (isMarshmelloError(err)) {
    if (err.statusCode >= 500) return { status: err.statusCode, code: err.code, message: 'service unavailable, try again' }
    return { status: err.statusCode, code: err.code, message: err.message }
  }
  const e = err as FastifyError
  if (e?.validation !== undefined) {
    return { status: 400, code: 'MM_ERR_VALIDATION', message: String(e.message).slice(0, 300) }
  }
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'MM_ERR_BAD_JSON', message: 'request body is not valid JSON' }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'MM_ERR_TOO_LARGE', message: `request body is larger than ${BODY_LIMIT} bytes` }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'MM_ERR_MEDIA_TYPE', message: 'send application/json' }
  }
  // secure-json-parse refuses __proto__/constructor keys with a 400 SyntaxError
  if (e instanceof SyntaxError) return { status: 400, code: 'MM_ERR_BAD_JSON', message: 'request body is not valid JSON' }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500
  if (status >= 400 && status < 500) return { status, code: 'MM_ERR_BAD_REQUEST', message: 'bad request' }
  return { status: 500, code: 'MM_ERR_INTERNAL', message: 'internal error' }
}

/** The one error handler: safe JSON, and a log line (code and route only) for 5xx. */
export function errorHandler (logger: Logger) {
  return function (err: unknown, request: FastifyRequest, reply: FastifyReply) {
    const pub = toPublicError(err)
    if (pub.status >= 500) {
      logger.error('request failed', { method: request.method, route: request.routeOptions.url, status: pub.status, err: (err as { code?: string })?.code ?? (err as Error)?.name })
    }
    reply.code(pub.status).send({ error: { code: pub.code, message: pub.message } })
  }
}

/** A request as bytes: what the gateway and the services' dispatch function take. */
export interface BytesCall {
  method: string
  /** path and query string as received */
  url: string
  contentType?: string
  body?: Buffer
  /** aborted when the caller goes away (upstream requests are cancelled, long-polls stop waiting) */
  signal?: AbortSignal
}

/** An answer in bytes: what the gateway and the services' dispatch function return. */
export interface BytesReply {
  status: number
  contentType?: string
  body: Buffer
}

export const JSON_TYPE = 'application/json; charset=utf-8'

/** The API error shape for anything thrown; 5xx are logged with their code, never their message. */
export function errorReply (err: unknown, logger: Logger, method: string): BytesReply {
  const pub = toPublicError(err)
  if (pub.status >= 500) logger.error('request failed', { method, status: pub.status, err: (err as { code?: string })?.code ?? (err as Error)?.name })
  return { status: pub.status, contentType: JSON_TYPE, body: Buffer.from(JSON.stringify({ error: { code: pub.code, message: pub.message } })) }
}

/**
 * Answers a fastify request with a function that answers in bytes (the gateway, the
 * services' dispatch); `signal` aborts when the caller goes away before the answer.
 */
export async function serveBytes (reply: FastifyReply, answer: (signal: AbortSignal) => Promise<BytesReply>): Promise<FastifyReply> {
  const gone = new AbortController()
  const onClose = () => { if (!reply.raw.writableEnded) gone.abort() }
  reply.raw.on('close', onClose)
  try {
    const res = await answer(gone.signal)
    reply.code(res.status)
    if (res.contentType !== undefined) reply.header('content-type', res.contentType)
    return reply.send(res.status === 204 ? undefined : res.body)
  } finally {
    reply.raw.off('close', onClose)
  }
}

/**
 * A fastify app that hands request bodies on as bytes (bounded by BODY_LIMIT) to a
 * function answering in bytes (serveBytes): the gateway app, the direct API and the
 * services over HTTP. The one error handler and the JSON 404 are installed.
 */
export function bytesApp (logger: Logger): FastifyInstance {
  const app = Fastify(baseFastifyOptions())
  app.setErrorHandler(errorHandler(logger))
  app.setNotFoundHandler(notFoundHandler)
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
  return app
}

/** a request header's value when it was sent once */
export const headerOf = (v: string | string[] | undefined): string | undefined => typeof v === 'string' ? v : undefined

export function notFoundHandler (_request: FastifyRequest, reply: FastifyReply) {
  reply.code(404).send({ error: { code: 'MM_ERR_NOT_FOUND', message: 'no such route' } })
}

/* ------------------------------------------------------------ internal token -- */

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

/**
 * onRequest hook for a service's routes: the request must carry the configured
 * internal token (compared in constant time over equal-length digests). Only then
 * are the gateway's `x-marshmello-*` headers believed.
 */
export function internalGuard (internalToken: string) {
  if (typeof internalToken !== 'string' || internalToken.length < 16) {
    throw new MarshmelloError('MM_ERR_CONFIG', 'internal', 'the internal token must be a string of at least 16 characters')
  }
  const expected = digest(internalToken)
  return async function checkInternalToken (request: FastifyRequest): Promise<void> {
    const got = request.headers[HEADER_INTERNAL]
    if (typeof got !== 'string' || !timingSafeEqual(digest(got), expected)) {
      /** Thrown when a service is called without the gateway's internal token. */
      throw new MarshmelloError('MM_ERR_INTERNAL_TOKEN', 'auth', 'missing or wrong internal token', 401)
    }
  }
}

/** The authenticated user the gateway vouches for (over HTTP: only behind internalGuard). */
export function requireCaller (call: { user?: string }): string {
  const v = call.user
  if (!isUsername(v)) {
    /** Thrown when a route needs a signed-in user and the gateway named none. */
    throw new MarshmelloError('MM_ERR_UNAUTHENTICATED', 'auth', 'sign in first', 401)
  }
  return v
}
