// Requests and responses over one built circuit (docs/PROTOCOL.md §6): each request is
// a stream of DATA fragments to the final hop, several at once; a response ends its
// stream, a timeout resets it. Sealing the cells and what a dead circuit means are the
// circuit's (circuit.ts): this file only numbers, splits, reassembles and times out.
import { isMarshmelloError } from '../../../errors.js'
import { forwardBodyMax } from '../../../onion/cells/constants.js'
import { DataFlag, decodeData, encodeData } from '../../../onion/cells/relay-msg.js'
import { decodeResponse, encodeRequest, type ApiRequest, type ApiResponse } from '../../../onion/streams/envelope.js'
import { Reassembler, fragment } from '../../../onion/streams/reassembly.js'
import type { Clock, Timer } from '../../common/clock.js'
import { CircuitError } from './circuit-error.js'

interface Pending { resolve: (r: ApiResponse) => void, reject: (e: Error) => void, timer: Timer }

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
    const streamId = this.nextStream++
    if (this.nextStream > 0xfffffff0) this.nextStream = 1
    const n = this.hops
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(streamId)
        try { this.send(encodeData({ streamId, flags: DataFlag.RESET, data: Buffer.alloc(0) })) } catch {}
        reject(new CircuitError(n, 'MM_ERR_TIMEOUT', `no response through the circuit within ${timeoutMs} ms`))
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

  /** a DATA body from the final hop: a fragment of some response */
  onData (body: Buffer): void {
    let whole: Buffer | undefined
    let streamId: number
    try {
      const m = decodeData(body)
      streamId = m.streamId
      whole = this.reasm.push(m)
    } catch {
      return
    }
    if (!whole) return
    const p = this.pending.get(streamId)
    if (!p) return
    this.pending.delete(streamId)
    p.timer.cancel()
    try {
      p.resolve(decodeResponse(whole))
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
