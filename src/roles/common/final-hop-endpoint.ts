// The I/O shell around src/onion's FinalHop (docs/PROTOCOL.md §6): it takes Channels
// whose circuits end here (finalHopEndpoint().accept), keeps their circuits in a
// bounded, expiring table, and mounts a /channel WebSocket route on a fastify HTTPS app
// (registerFinalHop). The gateway mounts it with the API as handler; tests mount it
// with an echo handler, or hand it memory channels. A channel that closes takes its circuits with it.
// CREATE budgets (§5.5): one token bucket per previous hop's address (every previous
// hop of the server is an exit relay, or a client on a one-hop circuit).
import type { FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { FinalHop, type FinalCircuit, type FinalHopEvent, type RequestContext } from '../../onion/circuits/final-hop.js'
import type { ApiRequest, ApiResponse } from '../../onion/streams/envelope.js'
import type { Logger } from '../../log.js'
import { acceptChannel, type Channel } from './channel.js'
import { systemClock, type Clock } from './clock.js'
import { ExpiringTable } from './expiring-table.js'
import type { HopIdentity } from './identity.js'
import { TokenBuckets } from './limits.js'

/** CREATEs per second (and burst) per previous hop's address at the final hop: an exit relay carries many clients' circuits */
export const FINAL_CREATE_RATE = 200
export const FINAL_CREATE_BURST = 2000

/** `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1` */
const addressOf = (remote: string): string => remote.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')

export interface FinalHopEndpointInit {
  identity: HopIdentity
  /** `ctx.circuit` names the circuit a request came on (the gateway's per-circuit budgets) */
  handler: (req: ApiRequest, ctx: RequestContext) => Promise<ApiResponse>
  maxCircuits: number
  circuitTtlMs: number
  maxChannels?: number
  /** CREATE budget per previous hop's address (§5.5); defaults FINAL_CREATE_RATE, FINAL_CREATE_BURST */
  createRate?: number
  createBurst?: number
  log: Logger
  /** every peer address a channel came from (P1 tests and --trace) */
  onPeer?: (remote: string) => void
  onEvent?: (e: FinalHopEvent) => void
  /** time for the circuit table and its sweep (tests); default the system clock */
  clock?: Clock
}

export interface FinalHopEndpoint {
  hop: FinalHop
  /** serves the circuits of one channel a previous hop opened to this hop */
  accept: (ch: Channel) => void
  circuits: () => number
  channels: () => number
  circuitsServed: () => number
  requestsServed: () => number
  closeAll: () => void
}

/** how often half-received requests are checked for expiry (their TTL is 30 s) */
const STREAM_SWEEP_MS = 5_000

export function finalHopEndpoint (init: FinalHopEndpointInit): FinalHopEndpoint {
  const clock = init.clock ?? systemClock
  const channels = new Map<string, Channel>()
  const circuits = new ExpiringTable<FinalCircuit>({
    max: init.maxCircuits,
    ttlMs: init.circuitTtlMs,
    // an evicted or expired circuit takes its keys and its half-received bytes with it
    dispose: (c) => hop.release(c),
    now: init.clock ? () => clock.now() : undefined,
  })
  // idle circuits leave on their own, not only when looked up again
  const sweep = clock.setInterval(() => circuits.purge(), Math.min(init.circuitTtlMs, 30_000))
  // half-received requests expire even when their circuit sends nothing more (PROTOCOL §6)
  const streamSweep = clock.setInterval(() => hop.expireStreams(), STREAM_SWEEP_MS)
  let served = 0
  let requests = 0
  const buckets = new TokenBuckets(init.createRate ?? FINAL_CREATE_RATE, init.createBurst ?? FINAL_CREATE_BURST, 10_000, () => clock.now())
  const hop = new FinalHop({
    identityPrivate: init.identity.privateDer,
    fingerprint: init.identity.fingerprint,
    handler: init.handler,
    circuits,
    maxCircuits: init.maxCircuits,
    now: () => clock.now(),
    send: (channel, cell) => channels.get(channel)?.send(cell),
    takeCreateToken: (channel) => {
      const ch = channels.get(channel)
      return ch !== undefined && buckets.take(addressOf(ch.remote))
    },
    onEvent: (e) => {
      if (e.type === 'created') served++
      if (e.type === 'request') requests++
      if (e.type === 'rejected') init.log.debug('cell rejected', { code: e.code })
      init.onEvent?.(e)
    },
  })
  return {
    hop,
    accept: (ch) => {
      init.onPeer?.(ch.remote)
      channels.set(ch.id, ch)
      ch.on('cell', (cell) => hop.onCell(ch.id, cell))
      ch.on('overflow', (circId) => hop.overflow(ch.id, circId))
      ch.on('close', () => {
        channels.delete(ch.id)
        hop.closeChannel(ch.id)
      })
    },
    circuits: () => circuits.size,
    channels: () => channels.size,
    circuitsServed: () => served,
    requestsServed: () => requests,
    closeAll: () => {
      sweep.cancel()
      streamSweep.cancel()
      for (const ch of channels.values()) ch.close(1000, 'shutting down')
    },
  }
}

/** the endpoint behind a /channel WebSocket route on `app` (HTTPS: the TLS is the app's) */
export async function registerFinalHop (app: FastifyInstance, init: FinalHopEndpointInit): Promise<FinalHopEndpoint> {
  const endpoint = finalHopEndpoint(init)
  await app.register(websocket, { options: { maxPayload: CELL_SIZE, perMessageDeflate: false } })
  app.register(async (scope) => {
    scope.addHook('preValidation', async (_req, reply) => {
      if (endpoint.channels() >= (init.maxChannels ?? 10_000)) return reply.code(503).send({ error: { code: 'MM_ERR_BUSY', message: 'too many channels' } })
    })
    scope.get('/channel', { websocket: true }, (socket, req) => {
      endpoint.accept(acceptChannel(socket, `${req.socket.remoteAddress}:${req.socket.remotePort}`))
    })
  })
  return endpoint
}
