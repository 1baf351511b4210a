// Splits a stream's message into DATA pieces and puts them back together strictly in
// order (docs/PROTOCOL.md §6): each piece must be the next one of its stream (its offset
// the bytes received so far, the same total, END exactly on the piece that reaches it),
// or the stream is refused with an error the sender is told. Bounded: message size, open
// streams, half-received bytes per circuit (and across a hop, shared), and time: a
// stream not complete within its TTL expires. Time is passed in; no clock here.
import { DATA_HEADER, DataFlag, encodeData, type DataMsg } from '../cells/relay-msg.js'
import { MarshmelloError } from '../../errors.js'

export const MAX_MESSAGE = 1024 * 1024
export const MAX_STREAMS = 64
/** half-received bytes one circuit may hold at the final hop: one whole message and one more */
export const MAX_CIRCUIT_BYTES = 2 * MAX_MESSAGE
/** a stream's message must be complete this long after its first piece */
export const STREAM_TTL_MS = 30_000

/** DATA bodies for one message; each carries at most `maxBody - DATA_HEADER` bytes, in order, END on the last */
export function fragment (streamId: number, message: Buffer, maxBody: number): Buffer[] {
  if (message.length > MAX_MESSAGE) throw new MarshmelloError('MM_ERR_TOO_LARGE', `message of ${message.length} bytes exceeds ${MAX_MESSAGE}`)
  const room = maxBody - DATA_HEADER
  if (room < 1) throw new MarshmelloError('MM_ERR_LENGTH', `a DATA body of ${maxBody} bytes has no room for data`)
  const total = message.length
  const out: Buffer[] = []
  let offset = 0
  do {
    const data = message.subarray(offset, offset + room)
    out.push(encodeData({ streamId, flags: offset + data.length >= total ? DataFlag.END : 0, offset, total, data }))
    offset += data.length
  } while (offset < total)
  return out
}

/** bytes several reassemblers draw on (every circuit of a final hop) */
export class ByteBudget {
  used = 0
  constructor (readonly max: number) {}
  take (n: number): boolean {
    if (this.used + n > this.max) return false
    this.used += n
    return true
  }

  give (n: number): void { this.used -= n }
}

export type StreamRefusal = 'MM_ERR_STREAM_SEQUENCE' | 'MM_ERR_TOO_LARGE' | 'MM_ERR_STREAMS' | 'MM_ERR_STREAM_BUDGET'

export type Pushed =
  /** the piece was taken; the message is not complete yet */
  | { kind: 'partial', streamId: number }
  | { kind: 'message', streamId: number, data: Buffer }
  /** the sender reset the stream: dropped, nobody is told */
  | { kind: 'reset', streamId: number }
  /** a piece of a stream that is already over (ended, reset, refused or expired): dropped */
  | { kind: 'ignored', streamId: number }
  /** the stream is dropped here; the sender must be told `code` */
  | { kind: 'refused', streamId: number, code: StreamRefusal, message: string }

export interface ReassemblerInit {
  maxStreams?: number
  maxMessage?: number
  /** bytes of half-received messages this circuit may hold (their declared totals); default MAX_STREAMS × MAX_MESSAGE */
  maxBytes?: number
  /** shared by every circuit of a hop, drawn on as well */
  shared?: ByteBudget
  /** a message must be complete this long after its first piece (default STREAM_TTL_MS) */
  ttlMs?: number
  /**
   * new stream ids must increase (the final hop: a client numbers its streams 1, 2, 3, …),
   * so a piece of a stream that is over is recognised and ignored, never taken as a new one
   */
  increasingIds?: boolean
}

interface Open { total: number, received: number, parts: Buffer[], deadline: number }

export class Reassembler {
  private readonly open = new Map<number, Open>()
  private last = 0
  private reserved = 0
  private readonly maxStreams: number
  private readonly maxMessage: number
  private readonly maxBytes: number
  private readonly ttlMs: number

  constructor (private readonly init: ReassemblerInit = {}) {
    this.maxStreams = init.maxStreams ?? MAX_STREAMS
    this.maxMessage = init.maxMessage ?? MAX_MESSAGE
    this.maxBytes = init.maxBytes ?? MAX_STREAMS * MAX_MESSAGE
    this.ttlMs = init.ttlMs ?? STREAM_TTL_MS
  }

  /** takes one DATA piece that arrived at `now` (ms) */
  push (m: DataMsg, now: number): Pushed {
    const id = m.streamId
    let s = this.open.get(id)
    if (m.flags & DataFlag.RESET) {
      if (s) this.close(id, s)
      else this.seen(id)
      return { kind: 'reset', streamId: id }
    }
    if (!s) {
      if (this.init.increasingIds && id <= this.last) return { kind: 'ignored', streamId: id }
      this.seen(id)
      if (m.offset !== 0) return refused(id, 'MM_ERR_STREAM_SEQUENCE', `stream ${id} starts at offset ${m.offset}: its first pieces are missing`)
      if (m.total > this.maxMessage) return refused(id, 'MM_ERR_TOO_LARGE', `stream message of ${m.total} bytes exceeds ${this.maxMessage}`)
      const bad = pieceError(m, 0, m.total)
      if (bad) return refused(id, 'MM_ERR_STREAM_SEQUENCE', bad)
      // a message in one piece is never held
      if (m.flags & DataFlag.END) return { kind: 'message', streamId: id, data: Buffer.from(m.data) }
      if (this.open.size >= this.maxStreams) return refused(id, 'MM_ERR_STREAMS', `more than ${this.maxStreams} open streams on one circuit`)
      if (!this.reserve(m.total)) return refused(id, 'MM_ERR_STREAM_BUDGET', `no room for ${m.total} more half-received bytes`)
      s = { total: m.total, received: 0, parts: [], deadline: now + this.ttlMs }
      this.open.set(id, s)
    } else {
      const bad = m.offset !== s.received
        ? `stream ${id}: piece at offset ${m.offset}, expected ${s.received} (a piece missing, repeated or out of order)`
        : m.total !== s.total ? `stream ${id}: total changed from ${s.total} to ${m.total}` : pieceError(m, s.received, s.total)
      if (bad) {
        this.close(id, s)
        return refused(id, 'MM_ERR_STREAM_SEQUENCE', bad)
      }
    }
    s.parts.push(Buffer.from(m.data))
    s.received += m.data.length
    if (!(m.flags & DataFlag.END)) return { kind: 'partial', streamId: id }
    const data = Buffer.concat(s.parts, s.total)
    this.close(id, s)
    return { kind: 'message', streamId: id, data }
  }

  /** drops every stream whose message is not complete by `now`; returns their ids */
  expire (now: number): number[] {
    const out: number[] = []
    for (const [id, s] of this.open) {
      if (s.deadline <= now) { this.close(id, s); out.push(id) }
    }
    return out
  }

  /** the owner gave up on a stream (a timeout): its half-received bytes are dropped */
  drop (streamId: number): void {
    const s = this.open.get(streamId)
    if (s) this.close(streamId, s)
  }

  /** open streams */
  get size (): number { return this.open.size }
  /** bytes reserved by half-received messages */
  get bytes (): number { return this.reserved }

  clear (): void {
    for (const [id, s] of this.open) this.close(id, s)
  }

  private seen (id: number): void { if (id > this.last) this.last = id }

  private reserve (n: number): boolean {
    if (this.reserved + n > this.maxBytes) return false
    if (this.init.shared && !this.init.shared.take(n)) return false
    this.reserved += n
    return true
  }

  private close (id: number, s: Open): void {
    this.open.delete(id)
    this.reserved -= s.total
    this.init.shared?.give(s.total)
    s.parts.length = 0
  }
}

/** why a piece at `at` of a `total`-byte message is not a valid next piece, or undefined */
function pieceError (m: DataMsg, at: number, total: number): string | undefined {
  const end = at + m.data.length
  if (end > total) return `stream ${m.streamId}: piece ends at ${end}, beyond the total ${total}`
  const ends = (m.flags & DataFlag.END) !== 0
  if (ends && end !== total) return `stream ${m.streamId}: END at ${end} of ${total} bytes`
  if (!ends && end === total) return `stream ${m.streamId}: reaches its total ${total} without END`
  if (!ends && m.data.length === 0) return `stream ${m.streamId}: an empty piece that does not end it`
  return undefined
}

const refused = (streamId: number, code: StreamRefusal, message: string): Pushed => ({ kind: 'refused', streamId, code, message })
