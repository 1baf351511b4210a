// Requests and responses over one built circuit (docs/PROTOCOL.md §6): each request is
// a stream of DATA pieces to the final hop, several at once; a response ends its
// stream, a timeout resets it. Responses are taken strictly in order per stream: a piece
// missing, repeated or out of place fails that request with MM_ERR_STREAM_SEQUENCE and
// resets its stream, never delivers altered bytes. Sealing the cells and what a dead
// circuit means are the circuit's (circuit.ts): this file only numbers, splits,
// reassembles and times out.
import { isMarshmelloError } from '../../../errors.js'
import { forwardBodyMax } from '../../../onion/cells/constants.js'
import { decodeData, resetData } from '../../../onion/cells/relay-msg.js'
import { decodeResponse, encodeRequest, type ApiRequest, type ApiResponse } from '../../../onion/streams/envelope.js'
import { Reassembler, fragment } from '../../../onion/streams/reassembly.js'
import type { Clock, Timer } from '../../common/clock.js'
import { CircuitError } from './circuit-error.js'

interface Pending { resolve: (r: ApiResponse) => void, reject: (e: Error) => void, timer: Timer }

/** the last stream id (u32); a circuit that used them all takes no more requests */
const LAST_STREAM = 0xffffffff

export class Streams {
  private nextStream = 1
  private readonly pending = new Map<number, Pending>()
  private readonly reasm = new Reassembler()

  /**
   * `hops`: the circuit's length (the final hop is the last); `send` seals one DATA
   * body to the final hop and sends it, throwing when the circuit cannot carry it
   */
  constructor (private readonly hops: number, private readonly send: (body: Buffer) => void, private readonly clock: Clock) {}

  get size (): number { return this.pending.size }

  /** sends `req` and resolves with its response; MM_ERR_TIMEOUT after `timeoutMs` */
  request (req: ApiRequest, timeoutMs: number): Promise<ApiResponse> {
    const n = this.hops
    // the final hop takes new stream ids only in increasing order (§6)
    if (this.nextStream > LAST_STREAM) return Promise.reject(new CircuitError(0, 'MM_ERR_STREAMS', 'this circuit has used every stream id; build another'))
    const streamId = this.nextStream++
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(streamId)
        this.reasm.drop(streamId)
        this.reset(streamId)
        reject(new CircuitError(0, 'MM_ERR_TIMEOUT', `no response through the circuit within ${timeoutMs} ms`)) // any hop may be holding it: none is blamed
      }, timeoutMs)
      this.pending.set(streamId, { resolve, reject, timer })
      try {
        for (const part of fragment(streamId, encodeRequest(req), forwardBodyMax(n))) this.send(part)
      } catch (err) {
        timer.cancel()
        this.pending.delete(streamId)
        reject(isMarshmelloError(err) ? err : new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', (err as Error).message))
      }
    })
  }

  private reset (streamId: number): void {
    try { this.send(resetData(streamId)) } catch {}
  }

  /** a DATA body from the final hop: a piece of some response */
  onData (body: Buffer): void {
    let m
    try {
      m = decodeData(body)
    } catch {
      return
    }
    const p = this.pending.get(m.streamId)
    if (!p) return // a stream that is over (answered, timed out or refused): nothing waits for it
    const r = this.reasm.push(m, this.clock.now())
    if (r.kind === 'partial' || r.kind === 'ignored') return
    this.pending.delete(m.streamId)
    p.timer.cancel()
    if (r.kind === 'reset') return p.reject(new CircuitError(this.hops, 'MM_ERR_CIRCUIT_CLOSED', 'the final hop reset the stream'))
    if (r.kind === 'refused') {
      this.reset(m.streamId)
      return p.reject(new CircuitError(this.hops, r.code, `response refused: ${r.message}`))
    }
    try {
      p.resolve(decodeResponse(r.data))
    } catch (err) {
      p.reject(err as Error)
    }
  }

  /** every pending request fails with `err`; partial responses are dropped */
  failAll (err: Error): void {
    for (const p of this.pending.values()) { p.timer.cancel(); p.reject(err) }
    this.pending.clear()
    this.reasm.clear()
  }
}
