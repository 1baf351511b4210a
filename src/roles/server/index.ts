// `marshmello server` (docs/ARCHITECTURE.md §8): auth, messaging, the gateway (the circuit's
// final hop) and the directory, in one process by default or one service per
// process (`service`). The public face is one HTTPS port with the cell channel
// and the directory; the API is reachable only through circuits, plus
// `directApi` on loopback for debugging and benchmarks. Public health says up or down;
// exact counters need the operator token (`/metrics`, PROTOCOL §8).
import Fastify, { type FastifyInstance } from 'fastify'
import { join } from 'node:path'
import type { Logger } from '../../log.js'
import { MarshmelloError } from '../../errors.js'
import type { MessageStore, UserStore } from '../../storage/types.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import type { ApiRequest, ApiResponse } from '../../onion/streams/envelope.js'
import type { RequestContext } from '../../onion/circuits/final-hop.js'
import type { Server as TlsServer } from 'node:tls'
import { hopDescriptor, loadOrCreateDirectoryKey, loadOrCreateIdentity, rotateLinkCertificates, type HopIdentity } from '../common/identity.js'
import { linkServerTls } from '../common/link-tls.js'
import { installErrorHandler } from '../common/http-errors.js'
import { registerFinalHop, type FinalHopEndpoint } from '../common/final-hop-endpoint.js'
import { ConsensusSource } from '../common/consensus-source.js'
import { loadOrCreateOperatorToken, operatorOnly, operatorTokenPath } from '../common/operator.js'
import { Directory, directoryRoutes, type AuthorityPeer } from './directory.js'
import {
  TokenService, buildServiceApp, createGateway, createServices, httpUpstream, inProcessUpstream, loadOrCreateSecret, serveGateway,
  remoteRevocationCheck, type Gateway, type Upstream,
} from './api/index.js'
import { baseFastifyOptions, bytesApp } from './api/http.js'

export type ServiceMode = 'all' | 'auth' | 'messages' | 'gateway' | 'directory'

export interface ServerInit {
  service: ServiceMode
  host: string
  port: number
  dataDir: string
  nickname?: string
  /** loopback port for the plain-HTTP public API (debugging, benchmarks) */
  directApi?: number
  messageTtlMs?: number
  /** DMs not acknowledged are deleted this long after they arrive; default 30 days */
  dmRetentionMs?: number
  tokenTtlMs?: number
  maxCircuits: number
  circuitTtlMs: number
  /** split mode: shared secret between the gateway and the services */
  internalToken?: string
  /** split mode: token signing secret file shared by auth and gateway */
  tokenSecretFile?: string
  authUrl?: string
  messagesUrl?: string
  /** gateway in split mode: where to post its descriptor */
  directory?: string
  directoryKey?: string
  /** gateway in split mode: how many pinned authorities must sign (default: a majority) */
  directoryThreshold?: number
  /** directory (all or directory mode): the other directory authorities (PROTOCOL §7.8) */
  authorityPeers?: AuthorityPeer[]
  /** directory in split mode: the gateway's identity fingerprint */
  gatewayFingerprint?: string
  relayStaleMs?: number
  /** the directory serves a private test network: non-public addresses listed, no per-address limit unless maxRelaysPerIp */
  privateNetwork?: boolean
  /** most relays listed per IP address (default 2; 0 = no limit) */
  maxRelaysPerIp?: number
  /** unbroken reachability before Stable / Guard (defaults: 5 and 8 days; 0 in a private network) */
  stableAfterMs?: number
  guardAfterMs?: number
  /** list a relay only after it answered at its published address with its own identity (default true) */
  verifyRelays?: boolean
  /** every peer address a cell channel came from, one per line (P1 tests) */
  onPeer?: (remote: string) => void
  /** what the final hop sees of every request (the adversarial-server test, PROTOCOL §12.6): never secrets */
  onRequest?: (r: SeenRequest) => void
  /** the file holding the token /metrics demands; default DATA/operator.token (made at first start) */
  operatorTokenFile?: string
}

/** One request as the server sees it: passwords and the bearer token itself masked. */
export interface SeenRequest {
  /** ms since epoch */
  at: number
  circuit?: string
  method: string
  path: string
  /** the subject of the request's JWT, when it carries one */
  sub?: string
  /** the JSON body's fields */
  body?: unknown
}

/** what a request shows the server (its JWT's subject read, not verified: the gateway verifies) */
function seen (req: ApiRequest, circuit: string | undefined): SeenRequest {
  const r: SeenRequest = { at: Date.now(), circuit, method: req.method, path: req.path }
  const jwt = /^Bearer [^.]+\.([^.]+)\./.exec(req.headers.authorization ?? '')
  if (jwt !== null) {
    try { r.sub = JSON.parse(Buffer.from(jwt[1], 'base64url').toString('utf8')).sub } catch { r.sub = '?' }
  }
  if (req.body.length > 0) {
    try {
      r.body = JSON.parse(req.body.toString('utf8'), (k, v) => k === 'password' ? '[masked]' : v)
    } catch { r.body = `[${req.body.length} bytes]` }
  }
  return r
}

export interface ServerComponents {
  log: Logger
  /** opened by the command from URLs; auth/all need users, messages/all need messages */
  users?: UserStore
  messages?: MessageStore
}

export interface RunningServer {
  url: string
  port: number
  directApiUrl?: string
  identity?: HopIdentity
  directoryFingerprint?: string
  counts (): Promise<Record<string, number>>
  close (): Promise<void>
}

const need = <T>(v: T | undefined, what: string): T => {
  if (v === undefined) throw new MarshmelloError('MM_ERR_CONFIG', what)
  return v
}

export async function startServer (init: ServerInit, c: ServerComponents): Promise<RunningServer> {
  const closers: (() => Promise<void> | void)[] = []
  const close = async () => { for (const f of closers.reverse()) await Promise.resolve(f()).catch(() => {}) }
  try {
    return await start(init, c, closers, close)
  } catch (err) {
    await close()
    throw err
  }
}

async function start (init: ServerInit, c: ServerComponents, closers: (() => Promise<void> | void)[], close: () => Promise<void>): Promise<RunningServer> {
  const { log } = c
  const mode = init.service
  const internalToken = init.internalToken // split mode only: in one process the gateway calls the services directly
  const secretFile = init.tokenSecretFile ?? join(init.dataDir, 'token.secret')

  /* ---- auth / messages alone: plain HTTP on the internal network ---- */
  if (mode === 'auth' || mode === 'messages') {
    const token = need(internalToken, `--service ${mode} needs the internal token (MARSHMELLO_INTERNAL_TOKEN or --internal-token-file)`)
    let app: FastifyInstance
    if (mode === 'auth') {
      const users = need(c.users, 'auth needs a user store')
      const tokens = new TokenService({ secret: await loadOrCreateSecret(secretFile), ttlMs: init.tokenTtlMs }, { isRevoked: (jti) => users.isTokenRevoked(jti) })
      app = buildServiceApp({ service: 'auth', internalToken: token, users, tokens, logger: log })
    } else {
      const authUp = httpUpstream(need(init.authUrl, '--service messages needs --auth-url (for DM recipients)'), token)
      closers.push(() => authUp.close())
      app = buildServiceApp({ service: 'messages', internalToken: token, messages: need(c.messages, 'messages needs a message store'), ttlMs: init.messageTtlMs, dmRetentionMs: init.dmRetentionMs, logger: log })
    }
    closers.push(() => app.close())
    await app.listen({ host: init.host, port: init.port })
    const port = (app.server.address() as { port: number }).port
    return {
      url: `http://${init.host}:${port}`,
      port,
      counts: async () => ({ ...(c.users ? { users: await c.users.count() } : {}), ...(c.messages ? { messages: await c.messages.count() } : {}) }),
      close,
    }
  }

  /* ---- HTTPS face: cell channel (gateway/all) and directory (directory/all) ---- */
  const identity = loadOrCreateIdentity(init.dataDir, init.host)
  const app = Fastify({ https: linkServerTls(identity), logger: false, bodyLimit: 64 * 1024, requestTimeout: 30_000, frameworkErrors: baseFastifyOptions().frameworkErrors })
  installErrorHandler(app, { log })
  closers.push(() => app.close())
  // link certificates are rotated ahead of expiry (docs/PROTOCOL.md §2.1), served to new connections at once
  const rotation = setInterval(() => {
    try {
      if (rotateLinkCertificates(init.dataDir, init.host, identity)) (app.server as unknown as TlsServer).setSecureContext(linkServerTls(identity))
    } catch (err) { log.warn('link certificate rotation failed', { reason: (err as Error).message }) }
  }, 3600_000)
  rotation.unref()
  closers.push(async () => clearInterval(rotation))
  let port = init.port
  const descriptor = (): Descriptor => hopDescriptor(identity, { role: 'server', nickname: init.nickname ?? 'server', host: init.host, port })

  let directory: Directory | undefined
  if (mode === 'all' || mode === 'directory') {
    directory = new Directory({
      key: loadOrCreateDirectoryKey(init.dataDir),
      serverDescriptor: mode === 'all' ? descriptor : undefined,
      gatewayFingerprint: init.gatewayFingerprint,
      staleMs: init.relayStaleMs,
      privateNetwork: init.privateNetwork,
      maxPerAddress: init.maxRelaysPerIp,
      stableAfterMs: init.stableAfterMs,
      guardAfterMs: init.guardAfterMs,
      peers: init.authorityPeers,
    })
    await app.register(directoryRoutes, { directory, probe: init.verifyRelays === false ? null : undefined, log })
  }

  let endpoint: FinalHopEndpoint | undefined
  let gateway: Gateway | undefined
  let serviceStats: (() => Record<string, number>) | undefined
  if (mode === 'all' || mode === 'gateway') {
    let upstream: { auth: Upstream, messages: Upstream }
    let tokens: TokenService
    const secret = await loadOrCreateSecret(secretFile)
    if (mode === 'all') {
      const users = need(c.users, 'the server needs a user store')
      tokens = new TokenService({ secret, ttlMs: init.tokenTtlMs }, { isRevoked: (jti) => users.isTokenRevoked(jti) })
      // sealed sender's trust root is the directory key clients already pin (PROTOCOL §12.2)
      const sealed = { rootPrivate: loadOrCreateDirectoryKey(init.dataDir).privateKey }
      const services = await createServices({ service: 'all', users, tokens, messages: need(c.messages, 'the server needs a message store'), ttlMs: init.messageTtlMs, dmRetentionMs: init.dmRetentionMs, sealed, logger: log })
      closers.push(() => services.close())
      serviceStats = () => services.stats()
      const up = inProcessUpstream(services.dispatch)
      upstream = { auth: up, messages: up }
    } else {
      const token = need(internalToken, '--service gateway needs the internal token (MARSHMELLO_INTERNAL_TOKEN or --internal-token-file)')
      const auth = httpUpstream(need(init.authUrl, '--service gateway needs --auth-url'), token)
      const messages = httpUpstream(need(init.messagesUrl, '--service gateway needs --messages-url'), token)
      closers.push(() => auth.close(), () => messages.close())
      tokens = new TokenService({ secret, ttlMs: init.tokenTtlMs }, { isRevoked: remoteRevocationCheck(auth) })
      upstream = { auth, messages }
    }
    const gw = createGateway({ tokens, upstream, logger: log })
    gateway = gw
    const handler = async (req: ApiRequest, ctx: RequestContext): Promise<ApiResponse> => {
      init.onRequest?.(seen(req, ctx.circuit))
      const res = await gw({ method: req.method, url: req.path, contentType: req.headers['content-type'] || undefined, authorization: req.headers.authorization || undefined, body: req.body, circuit: ctx.circuit })
      return { status: res.status, headers: res.contentType !== undefined ? { 'content-type': res.contentType } : {}, body: res.body }
    }
    endpoint = await registerFinalHop(app, { identity, handler, maxCircuits: init.maxCircuits, circuitTtlMs: init.circuitTtlMs, log, onPeer: init.onPeer })
    closers.push(() => endpoint!.closeAll())
  }

  // the final hop's own signed descriptor, as relays serve theirs (the directory's reachability probe reads it)
  if (mode === 'all' || mode === 'gateway') app.get('/descriptor', async () => descriptor())
  // Public health says up or down and nothing countable (PROTOCOL §8): readiness asks the
  // stores (503 while one is down) but shows none of their counts
  app.get('/healthz', async () => {
    await counts()
    return { ok: true, role: 'server', service: mode }
  })
  // liveness without touching a store: /healthz answers 503 while a store is down, and an
  // orchestrator should not restart a process that is only waiting for its database
  app.get('/livez', async () => ({ ok: true, role: 'server', service: mode }))
  // exact counters for the operator only
  const operatorToken = loadOrCreateOperatorToken(init.operatorTokenFile ?? operatorTokenPath(init.dataDir))
  app.get('/metrics', { onRequest: operatorOnly(operatorToken) }, async () => ({ ...(await counts()), ...serviceStats?.() }))

  const counts = async (): Promise<Record<string, number>> => ({
    ...(c.users && mode === 'all' ? { users: await c.users.count() } : {}),
    ...(c.messages && mode === 'all' ? { messages: await c.messages.count() } : {}),
    ...(directory ? { relays: directory.relayCount } : {}),
    ...(endpoint ? { circuits: endpoint.circuits(), circuitsServed: endpoint.circuitsServed(), requestsServed: endpoint.requestsServed() } : {}),
  })

  await app.listen({ host: init.host, port: init.port })
  port = (app.server.address() as { port: number }).port

  if (mode === 'gateway') {
    const src = new ConsensusSource({ directory: need(init.directory, '--service gateway needs --directory URL to publish its descriptor'), directoryKey: need(init.directoryKey, '--service gateway needs --directory-key'), directoryThreshold: init.directoryThreshold, log, descriptor })
    await src.start()
    closers.push(() => src.stop())
  }

  let directApiUrl: string | undefined
  if (init.directApi !== undefined && gateway) {
    // the same gateway over plain HTTP, loopback only
    // the API apps' options and error handler: a too-large body or a malformed URL gets the JSON error shape too
    const direct = bytesApp(log)
    const gw = gateway
    direct.all('/*', (req, reply) => serveGateway(gw, req, reply))
    closers.push(() => direct.close())
    await direct.listen({ host: '127.0.0.1', port: init.directApi })
    directApiUrl = `http://127.0.0.1:${(direct.server.address() as { port: number }).port}`
  }

  return {
    url: `https://${init.host}:${port}`,
    port,
    directApiUrl,
    identity,
    directoryFingerprint: directory?.fingerprint,
    counts,
    close,
  }
}
