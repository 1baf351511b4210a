// The circuit's last hop (docs/PROTOCOL.md §6): answers CREATE, peels the last
// layer, reassembles stream messages into API requests, hands each to a handler
// and sends the response back as DATA cells under this hop's backward layer.
// Pure logic: the caller supplies `send` (the channel) and the circuit table (a
// bounded map); the gateway and the tests' echo hop both use this class.
import { isMarshmelloError } from '../../errors.js'
import { BACKWARD_BODY } from '../cells/constants.js'
import { RelayCommand } from '../cells/layer.js'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../cells/channel-cell.js'
import { DATA_HEADER, DataFlag, HopError, decodeData, encodeData } from '../cells/relay-msg.js'
import { relayRespond } from '../handshake/oaep-x25519.js'
import { decodeRequest, encodeResponse, type ApiRequest, type ApiResponse } from '../streams/envelope.js'
import { Reassembler, fragment } from '../streams/reassembly.js'
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
  onEvent?: (e: FinalHopEvent) => void
}

const MAX_PENDING = 64

export class FinalHop {
  /** X25519 keys made ahead, so answering a CREATE imports none */
  private readonly ephemerals = new EphemeralPool()

  constructor (private readonly init: FinalHopInit) {}

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
    this.init.circuits.set(k, { channel, circId: cell.circId, hop: new HopState(keys), streams: new Reassembler(), pending: 0 })
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
    const layer = c.hop.peel(cell.data)
    if (layer.cmd === RelayCommand.DROP) return
    if (layer.cmd !== RelayCommand.DATA) return this.reject(channel, 'MM_ERR_RELAY_CMD')
    const msg = decodeData(layer.body)
    let whole: Buffer | undefined
    try {
      whole = c.streams.push(msg)
    } catch (err) {
      this.sendMessage(c, msg.streamId, errorResponse(413, isMarshmelloError(err) ? err.code : 'MM_ERR_TOO_LARGE', 'request too large'))
      return
    }
    if (!whole) return
    if (c.pending >= MAX_PENDING) {
      this.sendMessage(c, msg.streamId, errorResponse(429, 'MM_ERR_STREAMS', 'too many requests in flight on this circuit'))
      return
    }
    let req: ApiRequest
    try {
      req = decodeRequest(whole)
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

  /** DESTROY from the channel, or the channel closed: forget and wipe the circuit */
  destroy (channel: string, circId: number): void {
    const k = this.key(channel, circId)
    const c = this.init.circuits.get(k)
    if (!c) return
    this.init.circuits.delete(k)
    c.hop.wipe()
    c.streams.clear()
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
export const resetBody = (streamId: number): Buffer => encodeData({ streamId, flags: DataFlag.RESET, data: Buffer.alloc(0) })
export { DATA_HEADER }
