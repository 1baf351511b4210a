// `marshmello relay`: one onion relay (docs/ARCHITECTURE.md §6). Fastify over HTTPS with the
// hop's self-signed certificate; /channel upgrades to the cell channel, and a few
// plain endpoints serve health (up or down, nothing countable), metrics (only with the
// operator token, PROTOCOL §8), this relay's descriptor and a cached copy of the
// consensus (so clients bootstrap without contacting the server, P1).
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { createWriteStream, type WriteStream } from 'node:fs'
import { hkdfSha256 } from '../../onion/crypto/primitives.js'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import type { Logger } from '../../log.js'
import type { SessionStore } from '../../storage/types.js'
import { acceptChannel, connectChannel, CLOSE } from '../common/channel.js'
import { join } from 'node:path'
import type { Server as TlsServer } from 'node:tls'
import { hopDescriptor, loadOrCreateIdentity, rotateLinkCertificates, type HopIdentity } from '../common/identity.js'
import { ConsensusSource } from '../common/consensus-source.js'
import { linkServerTls } from '../common/link-tls.js'
import { installErrorHandler } from '../common/http-errors.js'
import { loadOrCreateOperatorToken, operatorOnly, operatorTokenPath } from '../common/operator.js'
import { RelayCore } from './relay-core.js'

export interface RelayInit {
  host: string
  port: number
  dataDir: string
  nickname: string
  consensusFile?: string
  /** the directory authorities' URLs, comma-separated */
  directory?: string
  /** pinned authority key fingerprints, comma-separated */
  directoryKey: string
  /** how many pinned authorities must sign a consensus (default: a majority) */
  directoryThreshold?: number
  createRate: number
  createBurst: number
  /** the §5.5 bounds (RelayCoreInit has their defaults) */
  relayCreateRate?: number
  relayCreateBurst?: number
  maxCircuits?: number
  circuitQueueCells?: number
  maxQueuedBytes?: number
  stallMs?: number
  extendTimeoutMs?: number
  maxChannels: number
  traceFile?: string
  /** also write the bytes of every cell received (demo: shows that no relay can read the content) */
  traceCells?: boolean
  sweepMs?: number
  descriptorLifetimeMs?: number
  /** fingerprints of this operator's other relays (MyFamily, PROTOCOL §7.4): each must name this one too */
  family?: string[]
  /** how long circuits of a closed inbound channel wait for their previous hop to reconnect; default 3000 ms */
  reattachGraceMs?: number
  /** the file holding the token /metrics demands; default DATA/operator.token (made at first start) */
  operatorTokenFile?: string
}

export interface RelayComponents {
  log: Logger
  /** built from the relay's identity: (identity) => store */
  sessions: (identity: HopIdentity) => Promise<SessionStore>
}

export interface RunningRelay {
  app: FastifyInstance
  identity: HopIdentity
  core: RelayCore
  consensus: ConsensusSource
  url: string
  port: number
  descriptor: () => Descriptor
  /**
   * Rotates the link certificates now (docs/PROTOCOL.md §2.1; also run hourly): makes the
   * next one ahead, switches to it before the current one expires, and serves it to new
   * connections at once. True when the served certificate changed.
   */
  rotateLinkCertificates (now?: number): boolean
  close (): Promise<void>
}

/** the key a relay seals its shared session records with (Redis), derived from its identity */
export function sessionKeyFor (identity: HopIdentity): Buffer {
  return hkdfSha256(identity.privateDer, Buffer.from('marshmello/v1 session store'), identity.fingerprint, 32)
}

export async function startRelay (init: RelayInit, components: RelayComponents): Promise<RunningRelay> {
  const { log } = components
  const identity = loadOrCreateIdentity(init.dataDir, init.host)
  const sessions = await components.sessions(identity)
  let trace: WriteStream | undefined
  if (init.traceFile) trace = createWriteStream(init.traceFile, { flags: 'a', mode: 0o600 })

  let port = init.port
  const descriptor = (): Descriptor => hopDescriptor(identity, { role: 'relay', nickname: init.nickname, host: init.host, port, lifetimeMs: init.descriptorLifetimeMs, family: init.family })

  const consensus = new ConsensusSource({
    file: init.consensusFile,
    directory: init.directory,
    directoryKey: init.directoryKey,
    directoryThreshold: init.directoryThreshold,
    log,
    descriptor: init.directory ? descriptor : undefined,
    stateFile: join(init.dataDir, 'consensus-state.json'),
  })

  const self = `${init.host}:${init.port}`
  // channels to other hops leave from this relay's own address when it is an IPv4 one
  const localAddress = /^\d+\.\d+\.\d+\.\d+$/.test(init.host) ? init.host : undefined
  const core = new RelayCore({
    identity,
    createRate: init.createRate,
    createBurst: init.createBurst,
    relayCreateRate: init.relayCreateRate,
    relayCreateBurst: init.relayCreateBurst,
    maxCircuits: init.maxCircuits,
    circuitQueueCells: init.circuitQueueCells,
    maxQueuedBytes: init.maxQueuedBytes,
    stallMs: init.stallMs,
    extendTimeoutMs: init.extendTimeoutMs,
    sweepMs: init.sweepMs,
    reattachGraceMs: init.reattachGraceMs,
  }, {
    sessions,
    consensus: () => consensus.current,
    directoryDocument: () => consensus.raw, // a directory cache on one-hop circuits (PROTOCOL §7.3)
    openChannel: (d, auth) => connectChannel({ host: d.host, port: d.port, tlsCert: d.tlsCert, tlsFingerprint: d.tlsFingerprint, tlsNextCert: d.tlsNextCert, tlsNextFingerprint: d.tlsNextFingerprint, localAddress, auth }),
    log,
    trace: trace ? ({ cell, ...e }) => trace!.write(JSON.stringify({ t: Date.now(), relay: self, ...e, ...(init.traceCells && cell ? { cell: cell.toString('base64') } : {}) }) + '\n') : undefined,
  })

  const app = Fastify({
    https: linkServerTls(identity),
    logger: false,
    bodyLimit: 16 * 1024,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
  })
  installErrorHandler(app)
  await app.register(websocket, { options: { maxPayload: CELL_SIZE, perMessageDeflate: false } })

  // Public health says up or down and nothing countable (PROTOCOL §8): exact live counts
  // polled every few ms would show which relays carry a given circuit.
  // liveness without touching the session store
  app.get('/livez', async () => ({ ok: true, role: 'relay', fingerprint: identity.fingerprintHex }))
  // readiness: the session store answers (503 while it does not); its size is not shown
  app.get('/healthz', async () => {
    await sessions.size()
    return { ok: true, role: 'relay', fingerprint: identity.fingerprintHex, consensus: consensus.current !== null }
  })
  // exact counters for the operator only
  const operatorToken = loadOrCreateOperatorToken(init.operatorTokenFile ?? operatorTokenPath(init.dataDir))
  app.get('/metrics', { onRequest: operatorOnly(operatorToken) }, async () => ({ ...core.counters, circuits: await sessions.size(), tracked: core.tracked, channels: core.channelCount, memory: process.memoryUsage().rss }))
  app.get('/descriptor', async () => descriptor())
  app.get('/consensus', async (_req, reply) => {
    if (!consensus.raw) return reply.code(503).send({ error: { code: 'MM_ERR_NO_CONSENSUS', message: 'this relay has no valid consensus yet; try again shortly' } })
    return reply.type('application/json').send(consensus.raw)
  })
  app.register(async (scope) => {
    scope.addHook('preValidation', async (req, reply) => {
      if (core.channelCount >= init.maxChannels) {
        return reply.code(503).send({ error: { code: 'MM_ERR_BUSY', message: 'relay has too many channels' } })
      }
    })
    scope.get('/channel', { websocket: true }, (socket, req) => {
      const ch = acceptChannel(socket, `${req.socket.remoteAddress}:${req.socket.remotePort}`, { auth: core.channelAuth })
      core.accept(ch)
      ch.on('close', (code, reason) => { if (code === CLOSE.PROTOCOL) log.debug('channel closed', { code, reason }) })
    })
  })

  await app.listen({ host: init.host, port: init.port })
  port = (app.server.address() as { port: number }).port
  await consensus.start()
  const rotate = (now?: number): boolean => {
    const changed = rotateLinkCertificates(init.dataDir, init.host, identity, now)
    if (changed) (app.server as unknown as TlsServer).setSecureContext(linkServerTls(identity))
    return changed
  }
  const rotation = setInterval(() => { try { rotate() } catch (err) { log.warn('link certificate rotation failed', { reason: (err as Error).message }) } }, 3600_000)
  rotation.unref()

  return {
    app,
    identity,
    core,
    consensus,
    url: `https://${init.host}:${port}`,
    port,
    descriptor,
    rotateLinkCertificates: rotate,
    async close () {
      clearInterval(rotation)
      consensus.stop()
      core.closeAll()
      await app.close()
      await sessions.close()
      trace?.end()
    },
  }
}
