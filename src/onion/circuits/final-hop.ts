// The circuit's last hop (docs/PROTOCOL.md §6): answers CREATE, peels the last
// layer, reassembles stream messages into API requests, hands each to a handler
// and sends the response back as DATA cells under this hop's backward layer. A cell
// that does not open at its position ends the circuit (DESTROY INTEGRITY, §4); a
// stream piece out of sequence ends its stream with an error response. Pure logic:
// the caller supplies `send` (the channel), the time and the circuit table (a bounded
// map); the gateway and the tests' echo hop both use this class.
import { isMarshmelloError } from '../../errors.js'
import { BACKWARD_BODY } from '../cells/constants.js'
import { RelayCommand } from '../cells/layer.js'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../cells/channel-cell.js'
import { DATA_HEADER, HopError, decodeData, resetData } from '../cells/relay-msg.js'
import { relayRespond } from '../handshake/oaep-x25519.js'
import { decodeRequest, encodeResponse, type ApiRequest, type ApiResponse } from '../streams/envelope.js'
import { ByteBudget, MAX_CIRCUIT_BYTES, Reassembler, fragment, type StreamRefusal } from '../streams/reassembly.js'
import { HopState } from './hop-state.js'
import { EphemeralPool } from '../handshake/ephemeral-pool.js'

export interface FinalCircuit {
  /** the id of the channel the circuit came on */
  channel: string
  circId: number
  hop: HopState
  streams: Reassembler
  /** streams whose request is being handled (bounded like open streams) */
  pending: number
}

/** the subset of a Map (or a bounded table such as ExpiringTable) the final hop needs */
export interface CircuitTable<V> {
  get (k: string): V | undefined
  set (k: string, v: V): unknown
  delete (k: string): unknown
  keys (): Iterable<string>
  readonly size: number
  /** drops expired entries, when the table expires them (ExpiringTable) */
  purge?: () => number
}

export type FinalHopEvent =
  | { type: 'created', channel: string }
  | { type: 'rejected', channel: string, code: string }
  | { type: 'request' }
  | { type: 'destroyed' }

/** what the handler learns about a request besides its content (the gateway's per-circuit budgets) */
export interface RequestContext {
  /** an opaque id of the circuit the request came on, unique while it lives here; never an address */
  circuit: string
}

export interface FinalHopInit {
  identityPrivate: Buffer
  fingerprint: Buffer
  handler: (req: ApiRequest, ctx: RequestContext) => Promise<ApiResponse>
  /** sends one whole cell on the channel the circuit came on */
  send: (channel: string, cell: Buffer) => void
  circuits: CircuitTable<FinalCircuit>
  maxCircuits: number
  /**
   * takes one token from the CREATE budget of the previous hop this channel comes from
   * (§5.5); false refuses the CREATE BUSY before any RSA work. Default: no budget
   */
  takeCreateToken?: (channel: string) => boolean
  /** the time in ms (the role's Clock): half-received streams expire by it */
  now: () => number
  /** half-received request bytes one circuit may hold (default MAX_CIRCUIT_BYTES, 2 MiB) */
  maxCircuitBytes?: number
  /** half-received request bytes across every circuit of this hop (default 256 MiB) */
  maxBufferedBytes?: number
  /** a request must be complete this long after its first piece (default STREAM_TTL_MS, 30 s) */
  streamTtlMs?: number
  onEvent?: (e: FinalHopEvent) => void
}

const MAX_PENDING = 64
export const MAX_BUFFERED_BYTES = 256 * 1024 * 1024

/** the status of the error response that ends a refused stream (§6) */
const REFUSAL_STATUS: Record<StreamRefusal | 'MM_ERR_STREAM_EXPIRED', number> = {
  MM_ERR_STREAM_SEQUENCE: 400,
  MM_ERR_TOO_LARGE: 413,
  MM_ERR_STREAMS: 413,
  MM_ERR_STREAM_BUDGET: 503,
  MM_ERR_STREAM_EXPIRED: 408,
}

export class FinalHop {
  /** X25519 keys made ahead, so answering a CREATE imports none */
  private readonly ephemerals = new EphemeralPool()
  /** half-received bytes of every circuit here */
  readonly buffered: ByteBudget
  /** circuits holding half-received streams (what expireStreams looks at) */
  private readonly holding = new Set<FinalCircuit>()

  constructor (private readonly init: FinalHopInit) {
    this.buffered = new ByteBudget(init.maxBufferedBytes ?? MAX_BUFFERED_BYTES)
  }

  private key (channel: string, circId: number): string { return `${channel}/${circId}` }

  /** handles one cell from a channel; never throws (a bad cell is dropped and counted) */
  onCell (channel: string, cell: ChannelCell): void {
    try {
      switch (cell.cmd) {
        case ChannelCommand.CREATE: return this.onCreate(channel, cell)
        case ChannelCommand.RELAY: return this.onRelay(channel, cell)
        case ChannelCommand.DESTROY: return this.destroy(channel, cell.circId)
        default: this.reject(channel, 'MM_ERR_CHANNEL_CMD')
      }
    } catch (err) {
      this.reject(channel, isMarshmelloError(err) ? err.code : 'MM_ERR_INTERNAL')
    }
  }

  private reject (channel: string, code: string): void {
    this.init.onEvent?.({ type: 'rejected', channel, code })
  }

  private onCreate (channel: string, cell: ChannelCell): void {
    const k = this.key(channel, cell.circId)
    if (this.init.circuits.get(k)) return this.reject(channel, 'MM_ERR_CIRC_ID')
    // CREATE admission (§5.5), before the RSA decryption: a full table refuses, never
    // evicting a live circuit (expired ones go first); then the previous hop's budget
    if (this.init.circuits.size >= this.init.maxCircuits) this.init.circuits.purge?.()
    if (this.init.circuits.size >= this.init.maxCircuits) return this.refuseCreate(channel, cell.circId, 'MM_ERR_BUSY')
    if (this.init.takeCreateToken && !this.init.takeCreateToken(channel)) return this.refuseCreate(channel, cell.circId, 'MM_ERR_CREATE_RATE')
    const { keys, created } = relayRespond({ identityPrivate: this.init.identityPrivate, fingerprint: this.init.fingerprint, create: cell.data, ephemeral: this.ephemerals.take() })
    const streams = new Reassembler({ increasingIds: true, maxBytes: this.init.maxCircuitBytes ?? MAX_CIRCUIT_BYTES, shared: this.buffered, ttlMs: this.init.streamTtlMs })
    this.init.circuits.set(k, { channel, circId: cell.circId, hop: new HopState(keys), streams, pending: 0 })
    this.init.send(channel, encodeChannelCell(cell.circId, ChannelCommand.CREATED, created))
    this.init.onEvent?.({ type: 'created', channel })
  }

  private refuseCreate (channel: string, circId: number, code: 'MM_ERR_BUSY' | 'MM_ERR_CREATE_RATE'): void {
    this.init.send(channel, encodeChannelCell(circId, ChannelCommand.DESTROY, Buffer.from([HopError.BUSY])))
    this.reject(channel, code)
  }

  /**
   * The circuit's cells waiting on its channel passed their cap (§5.5): it ends here,
   * DESTROY BUSY towards the previous hop; the channel and its other circuits go on.
   */
  overflow (channel: string, circId: number): void {
    if (!this.init.circuits.get(this.key(channel, circId))) return
    this.destroy(channel, circId)
    this.init.send(channel, encodeChannelCell(circId, ChannelCommand.DESTROY, Buffer.from([HopError.BUSY])))
    this.reject(channel, 'MM_ERR_CIRCUIT_QUEUE')
  }

  private onRelay (channel: string, cell: ChannelCell): void {
    const c = this.init.circuits.get(this.key(channel, cell.circId))
    if (!c) return this.reject(channel, 'MM_ERR_NO_CIRCUIT')
    let layer
    try {
      layer = c.hop.peel(cell.data)
    } catch (err) {
      // the nonce is the cell's position (§3): a cell was dropped, repeated, reordered or
      // altered on the way, so nothing more of this circuit can be trusted (§4)
      this.reject(channel, isMarshmelloError(err) ? err.code : 'MM_ERR_INTERNAL')
      this.init.send(channel, encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.INTEGRITY])))
      return this.destroy(channel, cell.circId)
    }
    if (layer.cmd === RelayCommand.DROP) return
    if (layer.cmd !== RelayCommand.DATA) return this.reject(channel, 'MM_ERR_RELAY_CMD')
    const msg = decodeData(layer.body)
    const now = this.init.now()
    this.expireOn(c, now)
    const r = c.streams.push(msg, now)
    if (c.streams.size > 0) this.holding.add(c)
    else this.holding.delete(c)
    if (r.kind === 'partial' || r.kind === 'reset') return
    if (r.kind === 'ignored') return this.reject(channel, 'MM_ERR_STREAM_SEQUENCE')
    if (r.kind === 'refused') {
      this.reject(channel, r.code)
      return this.sendMessage(c, r.streamId, errorResponse(REFUSAL_STATUS[r.code], r.code, r.message))
    }
    if (c.pending >= MAX_PENDING) {
      this.sendMessage(c, msg.streamId, errorResponse(429, 'MM_ERR_STREAMS', 'too many requests in flight on this circuit'))
      return
    }
    let req: ApiRequest
    try {
      req = decodeRequest(r.data)
    } catch (err) {
      this.sendMessage(c, msg.streamId, errorResponse(400, isMarshmelloError(err) ? err.code : 'MM_ERR_ENVELOPE', 'malformed request envelope'))
      return
    }
    c.pending++
    this.init.onEvent?.({ type: 'request' })
    this.init.handler(req, { circuit: this.key(c.channel, c.circId) }).then(
      (res) => this.sendMessage(c, msg.streamId, res),
      () => this.sendMessage(c, msg.streamId, errorResponse(500, 'MM_ERR_INTERNAL', 'internal error')),
    ).finally(() => { c.pending-- })
  }

  /** half-received requests not complete in time are answered 408 MM_ERR_STREAM_EXPIRED and dropped */
  private expireOn (c: FinalCircuit, now: number): void {
    for (const id of c.streams.expire(now)) {
      this.reject(c.channel, 'MM_ERR_STREAM_EXPIRED')
      this.sendMessage(c, id, errorResponse(REFUSAL_STATUS.MM_ERR_STREAM_EXPIRED, 'MM_ERR_STREAM_EXPIRED', 'the request was not complete in time'))
    }
    if (c.streams.size === 0) this.holding.delete(c)
  }

  /** expires the half-received streams of every circuit (the shell calls it on a timer) */
  expireStreams (): void {
    const now = this.init.now()
    for (const c of [...this.holding]) {
      if (this.init.circuits.get(this.key(c.channel, c.circId)) !== c) this.release(c)
      else this.expireOn(c, now)
    }
  }

  private sendMessage (c: FinalCircuit, streamId: number, res: ApiResponse): void {
    // the circuit may have been destroyed while the handler ran
    if (this.init.circuits.get(this.key(c.channel, c.circId)) !== c) return
    let bytes: Buffer
    try {
      bytes = encodeResponse(res)
    } catch {
      bytes = encodeResponse(errorResponse(500, 'MM_ERR_INTERNAL', 'response could not be encoded'))
    }
    let parts: Buffer[]
    try {
      parts = fragment(streamId, bytes, BACKWARD_BODY)
    } catch {
      parts = fragment(streamId, encodeResponse(errorResponse(502, 'MM_ERR_TOO_LARGE', 'response too large')), BACKWARD_BODY)
    }
    for (const body of parts) {
      this.init.send(c.channel, encodeChannelCell(c.circId, ChannelCommand.RELAY, c.hop.originate(RelayCommand.DATA, body)))
    }
  }

  /** a circuit leaves (destroyed, or evicted by the table's owner): its keys and half-received bytes go */
  release (c: FinalCircuit): void {
    this.holding.delete(c)
    c.streams.clear()
    c.hop.wipe()
  }

  /** DESTROY from the channel, or the channel closed: forget and wipe the circuit */
  destroy (channel: string, circId: number): void {
    const k = this.key(channel, circId)
    const c = this.init.circuits.get(k)
    if (!c) return
    this.init.circuits.delete(k)
    this.release(c)
    this.init.onEvent?.({ type: 'destroyed' })
  }

  /** the channel closed: every circuit that came over it is gone */
  closeChannel (channel: string): void {
    const prefix = `${channel}/`
    const ids = [...this.init.circuits.keys()].filter((k) => k.startsWith(prefix)).map((k) => Number(k.slice(prefix.length)))
    for (const id of ids) this.destroy(channel, id)
  }
}

export function errorResponse (status: number, code: string, message: string): ApiResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ error: { code, message } })) }
}

/** a DATA body carrying a RESET for a stream (the client gave up on it) */
export const resetBody = resetData
export { DATA_HEADER }
