// The one mapping from a thrown value to an HTTP error answer `{ error: { code, message } }`,
// and the fastify error and 404 handlers built on it, used by every app (server API,
// relay, web UI). A MarshmelloError answers with its registry status (src/error-codes.ts),
// a schema failure is MM_ERR_VALIDATION 400, anything else a masked 500; a 5xx never
// carries its message or stack to the client and is logged by code only (no message:
// messages may name hosts or stores). Routes and schemas are the apps' own.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isMarshmelloError, type ErrorCode } from '../../errors.js'
import type { Logger } from '../../log.js'

export interface PublicError {
  status: number
  code: ErrorCode
  message: string
  /** public fields of the error (e.g. the fingerprints of a changed key), 4xx only */
  details?: Readonly<Record<string, string>>
}

const MESSAGE_MAX = 300
/** 5xx codes whose message is one fixed sentence for the user (it names no host or store), so it is kept */
const PLAIN_5XX: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['MM_ERR_PASSWORD_BUSY'])

/** What the client may see of `err`. */
export function toPublicError (err: unknown): PublicError {
  if (isMarshmelloError(err)) {
    const status = err.statusCode
    if (status >= 500) return { status, code: err.code, message: PLAIN_5XX.has(err.code) ? err.message.slice(0, MESSAGE_MAX) : maskedMessage(status) }
    return { status, code: err.code, message: err.message.slice(0, MESSAGE_MAX), ...(err.details ? { details: err.details } : {}) }
  }
  const e = err as Partial<FastifyError> | undefined
  if (e?.validation !== undefined) return { status: 400, code: 'MM_ERR_VALIDATION', message: String(e.message).slice(0, MESSAGE_MAX) }
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'MM_ERR_BAD_JSON', message: 'request body is not valid JSON' }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'MM_ERR_TOO_LARGE', message: 'request body is too large' }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'MM_ERR_MEDIA_TYPE', message: 'send application/json' }
  }
  // secure-json-parse refuses __proto__/constructor keys with a 400 SyntaxError
  if (err instanceof SyntaxError) return { status: 400, code: 'MM_ERR_BAD_JSON', message: 'request body is not valid JSON' }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500
  if (status >= 400 && status < 500) return { status, code: 'MM_ERR_BAD_REQUEST', message: 'bad request' }
  return { status: 500, code: 'MM_ERR_INTERNAL', message: maskedMessage(500) }
}

const maskedMessage = (status: number): string => status === 500 ? 'internal error' : 'service unavailable, try again'

/** The JSON body of an error answer. */
export const errorBody = (pub: PublicError) => ({ error: { ...pub.details, code: pub.code, message: pub.message } })

/** One log line for a 5xx: where, the status and the error's code or name, never its message. */
export function logFailure (log: Logger | undefined, err: unknown, pub: PublicError, where: { method: string, route?: string }): void {
  if (pub.status < 500 || log === undefined) return
  const e = err as { code?: unknown, name?: unknown } | undefined
  log.error('request failed', { ...where, status: pub.status, code: typeof e?.code === 'string' ? e.code : undefined, name: typeof e?.name === 'string' ? e.name : typeof err })
}

export interface ErrorHandlerInit {
  /** where 5xx are logged; none: not logged */
  log?: Logger
}

/** Installs the error handler and the JSON 404 on `app`. */
export function installErrorHandler (app: FastifyInstance, init: ErrorHandlerInit = {}): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const pub = toPublicError(err)
    logFailure(init.log, err, pub, { method: request.method, route: request.routeOptions?.url })
    return reply.code(pub.status).send(errorBody(pub))
  })
  app.setNotFoundHandler(notFoundHandler)
}

export function notFoundHandler (request: FastifyRequest, reply: FastifyReply) {
  return reply.code(404).send({ error: { code: 'MM_ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}` } })
}
