// The API services (auth, messages, or both) as one dispatch function (router.ts), and
// the same function served over HTTP for a service running apart from its gateway. In
// one process the gateway calls `dispatch` directly; over HTTP the internal token must
// come with every request but /healthz before the gateway's `x-marshmello-*` headers are
// believed. Both ways share one pipeline, so their answers cannot drift apart.

import type { FastifyInstance } from 'fastify'
import { MarshmelloError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import type { MessageStore, UserStore } from '../../../storage/types.js'
import { authRoutes } from './auth.js'
import { HEADER_TOKEN_EXP, HEADER_TOKEN_ID, HEADER_USER, bytesApp, headerOf, internalGuard, serveBytes } from './http.js'
import { messagesRoutes, type ServiceRoutes } from './messages.js'
import { compileRoutes, ok, type Dispatch, type Route } from './router.js'
import { errorResponses, healthSchema } from './schemas.js'
import type { TokenService } from './tokens.js'
import type { PasswordWorkInit } from './password-work.js'
import type { LoginThrottleInit } from './login-throttle.js'
import type { Clock } from '../../common/clock.js'
import type { SealedInit } from './sealed.js'

export type ServiceName = 'auth' | 'messages' | 'all'

export interface ServicesInit {
  service: ServiceName
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
  logger?: Logger
  now?: () => number
  /** auth: the scrypt gate's bounds, and failed-login throttling (PROTOCOL §6.1) */
  passwordWork?: PasswordWorkInit
  loginThrottle?: LoginThrottleInit
  /** auth: time for the throttle and timers; default the system clock */
  clock?: Clock
  /** messages: DM retention (default 30 days) */
  dmRetentionMs?: number
  /** all: sealed sender (needs the trust root, the directory key) */
  sealed?: SealedInit
}

export interface Services {
  dispatch: Dispatch
  /** answers waiting long-polls, stops the services' timers (the stores are the caller's) */
  close (): void
  /** the services' exact counters, for the operator endpoint only (PROTOCOL §8) */
  stats (): Record<string, number>
}

function need<T> (value: T | undefined, what: string, service: ServiceName): T {
  if (value === undefined) throw new MarshmelloError('MM_ERR_CONFIG', `the ${service} service needs ${what}`)
  return value
}

export async function createServices (init: ServicesInit): Promise<Services> {
  const logger = init.logger ?? silentLogger
  const parts: ServiceRoutes[] = []
  if (init.service === 'auth' || init.service === 'all') {
    parts.push(await authRoutes({
      users: need(init.users, 'a UserStore', init.service),
      tokens: need(init.tokens, 'a TokenService', init.service),
      passwordWork: init.passwordWork,
      loginThrottle: init.loginThrottle,
      clock: init.clock,
      logger,
    }))
  }
  if (init.service === 'messages' || init.service === 'all') {
    const users = init.service === 'all' ? need(init.users, 'a UserStore', init.service) : undefined
    parts.push(messagesRoutes({
      messages: need(init.messages, 'a MessageStore', init.service),
      ttlMs: init.ttlMs,
      longPollMaxMs: init.longPollMaxMs,
      maxLongPolls: init.maxLongPolls,
      logger,
      now: init.now,
      clock: init.clock,
      dmRetentionMs: init.dmRetentionMs,
      sealed: init.sealed !== undefined && users !== undefined ? { ...init.sealed, users } : undefined,
    }))
  }
  const health: Route = {
    method: 'GET',
    url: '/healthz',
    schema: { response: { 200: healthSchema, ...errorResponses } },
    handler: async () => ok({ ok: true, service: init.service }),
  }
  let closed = false
  return {
    dispatch: compileRoutes([health, ...parts.flatMap(p => p.routes)], logger),
    close () {
      if (closed) return
      closed = true
      for (const p of parts) p.close()
    },
    stats: () => Object.assign({}, ...parts.map(p => p.stats?.() ?? {})),
  }
}

export interface ServiceAppInit extends ServicesInit {
  /** what the gateway sends in `x-marshmello-internal` (at least 16 characters) */
  internalToken: string
}

const appStats = new WeakMap<FastifyInstance, () => Record<string, number>>()

/** a service app's exact counters (empty until it is ready): for the operator and tests, never a public endpoint */
export const serviceAppStats = (app: FastifyInstance): Record<string, number> => appStats.get(app)?.() ?? {}

/** The services over HTTP (split deployments): every route behind the internal token but /healthz. */
export function buildServiceApp (init: ServiceAppInit): FastifyInstance {
  const guard = internalGuard(init.internalToken)
  // bodies reach the router as bytes; it parses and validates them
  const app = bytesApp(init.logger ?? silentLogger)
  const outer = app
  app.register(async (app) => {
    const services = await createServices(init)
    appStats.set(outer, () => services.stats())
    app.addHook('preClose', async () => services.close())
    app.route({
      method: ['GET', 'POST', 'PUT', 'DELETE'],
      url: '/*',
      async handler (request, reply) {
        if (request.url.split('?', 1)[0] !== '/healthz') await guard(request)
        return serveBytes(reply, signal => services.dispatch({
          method: request.method,
          url: request.url,
          contentType: headerOf(request.headers['content-type']),
          body: Buffer.isBuffer(request.body) ? request.body : undefined,
          user: headerOf(request.headers[HEADER_USER]),
          tokenId: headerOf(request.headers[HEADER_TOKEN_ID]),
          tokenExp: headerOf(request.headers[HEADER_TOKEN_EXP]),
          signal,
        }))
      },
    })
  })
  return app
}
