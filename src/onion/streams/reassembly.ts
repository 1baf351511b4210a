// Splits a stream message into DATA bodies and puts them back together, with
// bounds: at most MAX_MESSAGE bytes per message and MAX_STREAMS open streams per
// circuit, so a peer cannot make a hop buffer without limit (docs/PROTOCOL.md §6).
import { MarshmelloError } from '../../errors.js'
import { DATA_HEADER, DataFlag, encodeData, type DataMsg } from '../cells/relay-msg.js'

export const MAX_MESSAGE = 1024 * 1024
export const MAX_STREAMS = 64

/** DATA bodies for one message; each carries at most `maxBody - DATA_HEADER` bytes */
export function fragment (streamId: number, message: Buffer, maxBody: number): Buffer[] {
  if (message.length > MAX_MESSAGE) throw new MarshmelloError('MM_ERR_TOO_LARGE', `message of ${message.length} bytes exceeds ${MAX_MESSAGE}`)
  const room = maxBody - DATA_HEADER
  const out: Buffer[] = []
  let off = 0
  do {
    const chunk = message.subarray(off, off + room)
    off += chunk.length
    out.push(encodeData({ streamId, flags: off >= message.length ? DataFlag.END : 0, data: chunk }))
  } while (off < message.length)
  return out
}

export class Reassembler {
  private readonly open = new Map<number, { parts: Buffer[], size: number }>()

  /** adds one DATA message; returns the whole message when it ends, else undefined */
  push (m: DataMsg): Buffer | undefined {
    let s = this.open.get(m.streamId)
    if (m.flags & DataFlag.RESET) {
      this.open.delete(m.streamId)
      return undefined
    }
    if (!s) {
      if (this.open.size >= MAX_STREAMS) throw new MarshmelloError('MM_ERR_STREAMS', `more than ${MAX_STREAMS} open streams on one circuit`)
      s = { parts: [], size: 0 }
      this.open.set(m.streamId, s)
    }
    s.size += m.data.length
    if (s.size > MAX_MESSAGE) {
      this.open.delete(m.streamId)
      throw new MarshmelloError('MM_ERR_TOO_LARGE', `stream message exceeds ${MAX_MESSAGE} bytes`)
    }
    s.parts.push(Buffer.from(m.data))
    if (m.flags & DataFlag.END) {
      this.open.delete(m.streamId)
      return Buffer.concat(s.parts)
    }
    return undefined
  }

  get size (): number { return this.open.size }
  clear (): void { this.open.clear() }
}
