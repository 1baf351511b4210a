// The I/O shell around src/onion's FinalHop: a /channel WebSocket route on a
// fastify HTTPS app whose circuits end here. The gateway mounts it with the API
// as handler; tests mount it with an echo handler. Circuits live in a bounded,
// expiring table; a link that closes takes its circuits with it.
import type { FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { FinalHop, type FinalCircuit, type FinalHopEvent } from '../../onion/circuits/final-hop.js'
import type { ApiRequest, ApiResponse } from '../../onion/streams/envelope.js'
import type { Logger } from '../../log.js'
import { acceptChannel, type Channel } from './channel.js'
import { ExpiringTable } from './expiring-table.js'
import type { HopIdentity } from './identity.js'

export interface FinalHopEndpointInit {
  identity: HopIdentity
  handler: (req: ApiRequest) => Promise<ApiResponse>
  maxCircuits: number
  circuitTtlMs: number
  maxChannels?: number
  log: Logger
  /** every peer address a channel came from (P1 tests and --trace) */
  onPeer?: (remote: string) => void
  onEvent?: (e: FinalHopEvent) => void
}

export interface FinalHopEndpoint {
  hop: FinalHop
  circuits: () => number
  channels: () => number
  circuitsServed: () => number
  requestsServed: () => number
  closeAll: () => void
}

export async function registerFinalHop (app: FastifyInstance, init: FinalHopEndpointInit): Promise<FinalHopEndpoint> {
  const channels = new Map<string, Channel>()
  const circuits = new ExpiringTable<FinalCircuit>({
    max: init.maxCircuits,
    ttlMs: init.circuitTtlMs,
    dispose: (c) => c.hop.wipe(),
  })
  // idle circuits leave on their own, not only when looked up again
  const sweep = setInterval(() => circuits.purge(), Math.min(init.circuitTtlMs, 30_000))
  sweep.unref()
  let served = 0
  let requests = 0
  const hop = new FinalHop({
    identityPrivate: init.identity.privateDer,
    fingerprint: init.identity.fingerprint,
    handler: init.handler,
    circuits,
    maxCircuits: init.maxCircuits,
    send: (link, cell) => channels.get(link)?.send(cell),
    onEvent: (e) => {
      if (e.type === 'created') served++
      if (e.type === 'request') requests++
      if (e.type === 'rejected') init.log.debug('cell rejected', { code: e.code })
      init.onEvent?.(e)
    },
  })
  await app.register(websocket, { options: { maxPayload: CELL_SIZE, perMessageDeflate: false } })
  app.register(async (scope) => {
    scope.addHook('preValidation', async (_req, reply) => {
      if (channels.size >= (init.maxChannels ?? 10_000)) return reply.code(503).send({ error: { code: 'MM_ERR_BUSY', message: 'too many channels' } })
    })
    scope.get('/channel', { websocket: true }, (socket, req) => {
      const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`
      init.onPeer?.(remote)
      const ch = acceptChannel(socket, remote)
      channels.set(ch.id, ch)
      ch.on('cell', (cell) => hop.onCell(ch.id, cell))
      ch.on('close', () => {
        channels.delete(ch.id)
        hop.closeLink(ch.id)
      })
    })
  })
  return {
    hop,
    circuits: () => circuits.size,
    channels: () => channels.size,
    circuitsServed: () => served,
    requestsServed: () => requests,
    closeAll: () => {
      clearInterval(sweep)
      for (const ch of channels.values()) ch.close(1000, 'shutting down')
    },
  }
}
