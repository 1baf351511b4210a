// The cells one channel holds while its transport is full (docs/PROTOCOL.md §5.5): one
// first-in first-out queue per circuit id, drained round robin when the transport has
// room, so one circuit's backlog delays the others by at most one cell per turn and can
// be dropped alone (Tor's circuitmux, without its EWMA priority). Bytes only; when to
// queue, the caps and what an overflow means are the channel's (channel-base.ts).
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { nextSeq } from './limits.js'

interface Lane { cells: Buffer[], head: number, seqs: number[] }

export interface QueuedCircuit { circId: number, seq: number, bytes: number }

export class SendQueue {
  /** circuit id → its waiting cells; Map order is the round-robin order */
  private readonly lanes = new Map<number, Lane>()
  bytes = 0

  /** queues one cell of `circId`; returns the bytes that circuit now has waiting */
  push (circId: number, cell: Buffer): number {
    let l = this.lanes.get(circId)
    if (!l) this.lanes.set(circId, l = { cells: [], head: 0, seqs: [] })
    l.cells.push(cell)
    l.seqs.push(nextSeq())
    this.bytes += CELL_SIZE
    return (l.cells.length - l.head) * CELL_SIZE
  }

  /** the next cell in round-robin order (one per circuit per turn), or undefined */
  shift (): Buffer | undefined {
    const first = this.lanes.entries().next()
    if (first.done) return undefined
    const [circId, l] = first.value
    const cell = l.cells[l.head]
    l.cells[l.head] = undefined as unknown as Buffer
    l.head++
    this.bytes -= CELL_SIZE
    this.lanes.delete(circId)
    if (l.head < l.cells.length) {
      if (l.head > 256 && l.head * 2 > l.cells.length) {
        l.cells = l.cells.slice(l.head)
        l.seqs = l.seqs.slice(l.head)
        l.head = 0
      }
      this.lanes.set(circId, l) // to the back of the round
    }
    return cell
  }

  /** drops every cell waiting for `circId`; returns the bytes freed */
  drop (circId: number): number {
    const l = this.lanes.get(circId)
    if (!l) return 0
    const bytes = (l.cells.length - l.head) * CELL_SIZE
    this.lanes.delete(circId)
    this.bytes -= bytes
    return bytes
  }

  /** circuits with cells waiting, each with the sequence number of its oldest */
  circuits (): QueuedCircuit[] {
    const out: QueuedCircuit[] = []
    for (const [circId, l] of this.lanes) out.push({ circId, seq: l.seqs[l.head], bytes: (l.cells.length - l.head) * CELL_SIZE })
    return out
  }

  clear (): number {
    const bytes = this.bytes
    this.lanes.clear()
    this.bytes = 0
    return bytes
  }
}
