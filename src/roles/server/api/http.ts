// What every API app shares: the error handler and JSON 404 of roles/common/http-errors.ts
// (the one mapping for every app), the internal-token guard that decides
// whether `x-marshmello-user` can be trusted, and the fastify options that keep
// bodies and headers out of logs. Routes and schemas live in the services.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { MarshmelloError } from '../../../errors.js'
import { secretMatcher } from '../../../onion/crypto/fingerprints.js'
import { errorBody, installErrorHandler, logFailure, toPublicError } from '../../common/http-errors.js'
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

/** The API error shape for anything thrown (roles/common/http-errors.ts); 5xx are logged with their code, never their message. */
export function errorReply (err: unknown, logger: Logger, method: string): BytesReply {
  const pub = toPublicError(err)
  logFailure(logger, err, pub, { method })
  return { status: pub.status, contentType: JSON_TYPE, body: Buffer.from(JSON.stringify(errorBody(pub))) }
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
  installErrorHandler(app, { log: logger })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
  return app
}

/** a request header's value when it was sent once */
export const headerOf = (v: string | string[] | undefined): string | undefined => typeof v === 'string' ? v : undefined

/* ------------------------------------------------------------ internal token -- */

/**
 * onRequest hook for a service's routes: the request must carry the configured
 * internal token (compared in constant time over equal-length digests). Only then
 * are the gateway's `x-marshmello-*` headers believed.
 */
export function internalGuard (internalToken: string) {
  if (typeof internalToken !== 'string' || internalToken.length < 16) {
    throw new MarshmelloError('MM_ERR_CONFIG', 'the internal token must be a string of at least 16 characters')
  }
  const matches = secretMatcher(internalToken)
  return async function checkInternalToken (request: FastifyRequest): Promise<void> {
    const got = request.headers[HEADER_INTERNAL]
    if (typeof got !== 'string' || !matches(got)) {
      /** Thrown when a service is called without the gateway's internal token. */
      throw new MarshmelloError('MM_ERR_INTERNAL_TOKEN', 'missing or wrong internal token')
    }
  }
}

/** The authenticated user the gateway vouches for (over HTTP: only behind internalGuard). */
export function requireCaller (call: { user?: string }): string {
  const v = call.user
  if (!isUsername(v)) {
    /** Thrown when a route needs a signed-in user and the gateway named none. */
    throw new MarshmelloError('MM_ERR_UNAUTHENTICATED', 'sign in first')
  }
  return v
}
