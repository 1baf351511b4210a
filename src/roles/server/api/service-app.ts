// Builds the fastify app for one API service (auth or messages) or both in one app:
// shared options (64 KiB body limit, no request logging, strict schemas), the one
// error handler, the JSON 404 and an unauthenticated GET /healthz. Listening is the
// caller's business (app.listen or app.inject): this file opens no socket.

import Fastify, { type FastifyInstance } from 'fastify'
import { MarshmelloError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import type { MessageStore, UserStore } from '../../../storage/types.js'
import { authService } from './auth.js'
import { baseFastifyOptions, errorHandler, notFoundHandler } from './http.js'
import { messagesService } from './messages.js'
import { errorResponses, healthSchema } from './schemas.js'
import type { TokenService } from './tokens.js'

export type ServiceName = 'auth' | 'messages' | 'all'

export interface ServiceAppInit {
  service: ServiceName
  /** what the gateway sends in `x-marshmello-internal` (at least 16 characters) */
  internalToken: string
  /** auth, all */
  users?: UserStore
  /** auth, all: issues tokens at login */
  tokens?: TokenService
  /** messages, all */
  messages?: MessageStore
  /** messages: see MessagesServiceOptions */
  ttlMs?: number
  longPollMaxMs?: number
  maxLongPolls?: number
  /** messages alone: how to check a DM recipient (e.g. remoteUserExists); 'all' uses `users` */
  userExists?: (username: string) => Promise<boolean>
  countUsers?: () => Promise<number>
  logger?: Logger
  now?: () => number
}

function need<T> (value: T | undefined, what: string, service: ServiceName): T {
  if (value === undefined) throw new MarshmelloError('MM_ERR_CONFIG', 'internal', `the ${service} service needs ${what}`)
  return value
}

export function buildServiceApp (init: ServiceAppInit): FastifyInstance {
  const logger = init.logger ?? silentLogger
  const app = Fastify(baseFastifyOptions())
  app.setErrorHandler(errorHandler(logger))
  app.setNotFoundHandler(notFoundHandler)
  app.get('/healthz', { schema: { response: { 200: healthSchema, ...errorResponses } } }, async () => ({ ok: true, service: init.service }))

  if (init.service === 'auth' || init.service === 'all') {
    app.register(authService, {
      users: need(init.users, 'a UserStore', init.service),
      tokens: need(init.tokens, 'a TokenService', init.service),
      internalToken: init.internalToken,
      logger,
    })
  }
  if (init.service === 'messages' || init.service === 'all') {
    const users = init.service === 'all' ? need(init.users, 'a UserStore', init.service) : undefined
    app.register(messagesService, {
      messages: need(init.messages, 'a MessageStore', init.service),
      internalToken: init.internalToken,
      ttlMs: init.ttlMs,
      longPollMaxMs: init.longPollMaxMs,
      maxLongPolls: init.maxLongPolls,
      userExists: init.userExists ?? (users && (async (name: string) => (await users.get(name)) !== undefined)),
      countUsers: init.countUsers ?? (users && (() => users.count())),
      logger,
      now: init.now,
    })
  }
  return app
}
