// Test helpers for the server API: a whole in-process stack (real sqlite user store
// and nedb message store in a temp dir, the services, the gateway) torn down with
// the test, plus small request helpers; clockedStack is the same with a fake clock and
// the gateway as the function the final hop calls. No fakes beyond the clock.

import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { nedbMessageStore } from '../../../../src/storage/messages/nedb.js'
import { sqliteUserStore } from '../../../../src/storage/users/sqlite.js'
import type { MessageStore, UserStore } from '../../../../src/storage/types.js'
import { buildGatewayApi, buildServiceApp, createGateway, createServices, inProcessUpstream, type Gateway, type Services } from '../../../../src/roles/server/api/gateway-api.js'
import { TokenService, loadOrCreateSecret } from '../../../../src/roles/server/api/tokens.js'
import type { PasswordWorkInit } from '../../../../src/roles/server/api/password-work.js'
import type { CircuitLimitsInit } from '../../../../src/roles/server/api/circuit-limits.js'
import { FakeClock } from '../../../helpers/fake-clock.js'
import { ed25519KeyPair } from '../../../../src/onion/crypto/primitives.js'
import { directoryFingerprint } from '../../../../src/onion/directory/consensus.js'
import type { AnonTokensInit } from '../../../../src/roles/server/api/anon-tokens.js'
import { accessVerifier, deliveryTokenFor } from '../../../../src/roles/client/e2e/sealed.js'
import { PAD_BUCKETS } from '../../../../src/onion/sealed/padding.js'
import { SEALED_OVERHEAD } from '../../../../src/onion/sealed/sealed-envelope.js'

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
  const sealed = { rootPrivate: ed25519KeyPair().privateKey }
  const services = await createServices({ service: 'all', users, tokens, messages, ttlMs: opts.ttlMs, maxLongPolls: opts.maxLongPolls, sealed })
  const service = buildServiceApp({ service: 'all', internalToken, users, tokens, messages, ttlMs: opts.ttlMs, maxLongPolls: opts.maxLongPolls, sealed })
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

/**
 * A sealed DM to `to` (PROTOCOL §12), the only kind the server takes: the recipient (signed
 * in with `recipientToken`) sets a fresh access verifier, then an envelope of random bytes
 * padded to a valid length (the server cannot tell it from a real one) is sent with the
 * matching delivery token and no JWT. `bytes` picks another length (a refused one included).
 */
export async function sealedDm (app: FastifyInstance, recipientToken: string, to: string, o: { bytes?: number } = {}): Promise<Answer> {
  const accessKey = randomBytes(16)
  const set = await call(app, 'PUT', '/v1/dms/settings', { token: recipientToken, body: { verifier: accessVerifier(accessKey), allowStrangers: true } })
  if (set.status !== 204) throw new Error(`dm settings for ${to}: ${set.status} ${set.raw}`)
  const envelope = randomBytes(o.bytes ?? SEALED_OVERHEAD + PAD_BUCKETS[0]).toString('base64url')
  return await call(app, 'POST', '/v1/dms/sealed', { body: { to, envelope, deliveryToken: deliveryTokenFor(accessKey) } })
}

/** 32 random bytes as base64, like a raw X25519 or Ed25519 public key */
export const rawKey = () => randomBytes(32).toString('base64')

export { sleep } from '../../../helpers/wait.js'

/* ---------------------------------------------- the gateway as a function, on a fake clock -- */

export interface ClockedStack {
  /** the gateway function the final hop calls (requests may name their circuit) */
  gateway: Gateway
  services: Services
  clock: FakeClock
  users: UserStore
  messages: MessageStore
  /** the sealed-sender trust root's fingerprint (hex), what clients pin as the directory key */
  rootFingerprint: string
}

/** the in-process services and gateway with an injected clock (throttle delays, per-circuit budgets) */
export async function clockedStack (t: Teardown, o: { passwordWork?: PasswordWorkInit, circuitLimits?: CircuitLimitsInit, dmRetentionMs?: number, anonTokens?: AnonTokensInit, strangerBurst?: number } = {}): Promise<ClockedStack> {
  const dir = await tempDir(t)
  const clock = new FakeClock()
  const root = ed25519KeyPair()
  const users = sqliteUserStore({ path: join(dir, 'users.db') })
  const messages = await nedbMessageStore({ path: join(dir, 'messages.db') })
  const tokens = new TokenService({ secret: await loadOrCreateSecret(join(dir, 'token.secret')) }, { isRevoked: jti => users.isTokenRevoked(jti) })
  const services = await createServices({ service: 'all', users, tokens, messages, clock, passwordWork: o.passwordWork, dmRetentionMs: o.dmRetentionMs, sealed: { rootPrivate: root.privateKey, anonTokens: o.anonTokens, strangerBurst: o.strangerBurst } })
  const upstream = inProcessUpstream(services.dispatch)
  const gateway = createGateway({ tokens, upstream: { auth: upstream, messages: upstream }, clock, circuitLimits: o.circuitLimits })
  t.teardown(async () => {
    services.close()
    await users.close()
    await messages.close()
  })
  return { gateway, services, clock, users, messages, rootFingerprint: directoryFingerprint(root.publicKey) }
}

/** one JSON request to the gateway function, from `circuit` when given */
export async function gw (g: Gateway, method: string, url: string, o: { body?: unknown, token?: string, circuit?: string } = {}): Promise<Answer> {
  const res = await g({
    method,
    url,
    circuit: o.circuit,
    authorization: o.token === undefined ? undefined : `Bearer ${o.token}`,
    contentType: o.body === undefined ? undefined : 'application/json',
    body: o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body)),
  })
  const raw = res.body.toString('utf8')
  let json: any
  try { json = raw === '' ? undefined : JSON.parse(raw) } catch { json = undefined }
  return { status: res.status, json, raw }
}

/**
 * Waits for `p`, moving the fake clock only while a login waits out its throttle delay
 * (real scrypt work runs on the real event loop meanwhile); also returns how much fake
 * time passed, i.e. how long the throttle held the request.
 */
export async function drive<T> (s: ClockedStack, p: Promise<T>, stepMs = 250): Promise<{ value: T, waitedMs: number }> {
  let done = false
  let value!: T
  void p.then((v) => { done = true; value = v })
  const start = s.clock.now()
  const giveUp = Date.now() + 60_000 // a bound on real time for the real scrypt work, never a wait
  while (!done && Date.now() < giveUp) {
    if (s.services.stats().loginsDelayed > 0) await s.clock.advance(stepMs)
    // real scrypt work runs in the thread pool: yield the CPU to it instead of spinning
    else await Promise.race([p, new Promise((resolve) => setTimeout(resolve, 2))])
  }
  if (!done) throw new Error('the request never finished')
  return { value, waitedMs: s.clock.now() - start }
}
