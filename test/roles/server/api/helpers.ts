// Test helpers for the server API: a whole in-process stack (real sqlite user store
// and nedb message store in a temp dir, the services, the gateway) torn down with
// the test, plus small request helpers. No fakes beyond an optional clock.

import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { nedbMessageStore } from '../../../../src/storage/messages/nedb.js'
import { sqliteUserStore } from '../../../../src/storage/users/sqlite.js'
import type { MessageStore, UserStore } from '../../../../src/storage/types.js'
import { buildGatewayApi, buildServiceApp, createServices, inProcessUpstream, type Services } from '../../../../src/roles/server/api/gateway-api.js'
import { TokenService, loadOrCreateSecret } from '../../../../src/roles/server/api/tokens.js'

type Teardown = { teardown (fn: () => unknown): void }

export async function tempDir (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-api-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface Stack {
  gateway: FastifyInstance
  /** what the gateway calls in-process */
  services: Services
  /** the same services over HTTP, as a split deployment runs them (behind the internal token) */
  service: FastifyInstance
  users: UserStore
  messages: MessageStore
  tokens: TokenService
  internalToken: string
  dir: string
}

export interface StackOptions {
  ttlMs?: number
  tokenTtlMs?: number
  now?: () => number
  maxLongPolls?: number
}

/** register+login+everything in one process, as `marshmello server` runs by default */
export async function stack (t: Teardown, opts: StackOptions = {}): Promise<Stack> {
  const dir = await tempDir(t)
  const users = sqliteUserStore({ path: join(dir, 'users.db') })
  const messages = await nedbMessageStore({ path: join(dir, 'messages.db') })
  const secret = await loadOrCreateSecret(join(dir, 'token.secret'))
  const tokens = new TokenService({ secret, ttlMs: opts.tokenTtlMs }, { isRevoked: jti => users.isTokenRevoked(jti), now: opts.now })
  const internalToken = randomBytes(24).toString('base64url')
  const services = await createServices({ service: 'all', users, tokens, messages, ttlMs: opts.ttlMs, maxLongPolls: opts.maxLongPolls })
  const service = buildServiceApp({ service: 'all', internalToken, users, tokens, messages, ttlMs: opts.ttlMs, maxLongPolls: opts.maxLongPolls })
  const upstream = inProcessUpstream(services.dispatch)
  const gateway = buildGatewayApi({ tokens, upstream: { auth: upstream, messages: upstream } })
  t.teardown(async () => {
    await gateway.close()
    services.close()
    await service.close()
    await users.close()
    await messages.close()
  })
  return { gateway, services, service, users, messages, tokens, internalToken, dir }
}

export interface Answer { status: number, json: any, raw: string }

/** one JSON request through app.inject */
export async function call (app: FastifyInstance, method: string, url: string, opts: { token?: string, body?: unknown, headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json'
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(opts.body !== undefined ? { payload: typeof opts.body === 'string' || Buffer.isBuffer(opts.body) ? opts.body : JSON.stringify(opts.body) } : {}),
  })
  let json: any
  try { json = res.payload === '' ? undefined : JSON.parse(res.payload) } catch { json = undefined }
  return { status: res.statusCode, json, raw: res.payload }
}

export const PASSWORD = 'correct horse battery'

/** registers `name` and returns a fresh token */
export async function signUp (app: FastifyInstance, name: string, password = PASSWORD): Promise<string> {
  const reg = await call(app, 'POST', '/v1/auth/register', { body: { username: name, password } })
  if (reg.status !== 201) throw new Error(`register ${name}: ${reg.status} ${reg.raw}`)
  const login = await call(app, 'POST', '/v1/auth/login', { body: { username: name, password } })
  if (login.status !== 200) throw new Error(`login ${name}: ${login.status} ${login.raw}`)
  return login.json.token
}

/** 32 random bytes as base64, like a raw X25519 or Ed25519 public key */
export const rawKey = () => randomBytes(32).toString('base64')

export { sleep } from '../../../helpers/wait.js'
