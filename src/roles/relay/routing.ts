// A relay's local routing state (never in the shared store): which channel each
// circuit currently arrives on, which circuit names are in use on each channel (to
// tear them down when it closes), and the extends waiting for CREATED. Names are the
// store keys of store-key.ts. A circuit follows whichever channel its last authentic
// cell arrived on, so it survives its previous hop reconnecting (docs/PROTOCOL.md §5.3).
import type { Channel } from '../common/channel-types.js'
import type { Timer } from '../common/clock.js'
import { circIdOf } from './store-key.js'

export interface PendingExtend { prevKey: string, timer: Timer }

export class RoutingTable {
  /** prev key → the inbound channel the circuit's cells currently arrive on */
  private readonly live = new Map<string, Channel>()
  /** channel id → circuit names on it (prev keys inbound, next keys outbound) */
  private readonly on = new Map<string, Set<string>>()
  /** next key → the extend whose CREATE went out on it and is not answered yet */
  readonly pending = new Map<string, PendingExtend>()

  open (ch: Channel): void { this.on.set(ch.id, new Set()) }

  /** the channel is gone: its names, for the caller to tear down */
  close (ch: Channel): Set<string> {
    const names = this.on.get(ch.id) ?? new Set()
    this.on.delete(ch.id)
    return names
  }

  /** the channel circuit `prevKey` arrives on now, if any */
  arrivesOn (prevKey: string): Channel | undefined { return this.live.get(prevKey) }

  /** the open channel and circuit id to answer circuit `prevKey` on, if any */
  prev (prevKey: string): { ch: Channel, circId: number } | undefined {
    const ch = this.live.get(prevKey)
    return ch && !ch.closed ? { ch, circId: circIdOf(prevKey) } : undefined
  }

  /** the circuit `prevKey` now arrives on `ch` (after a cell opened under its keys) */
  follow (prevKey: string, ch: Channel): void {
    const was = this.live.get(prevKey)
    if (was === ch) return
    if (was) this.on.get(was.id)?.delete(prevKey)
    this.live.set(prevKey, ch)
    this.on.get(ch.id)?.add(prevKey)
  }

  forget (prevKey: string): void {
    const ch = this.live.get(prevKey)
    if (ch) this.on.get(ch.id)?.delete(prevKey)
    this.live.delete(prevKey)
  }

  /** the next key is used on the outgoing channel `ch` */
  claim (ch: Channel, nextKey: string): void { this.on.get(ch.id)?.add(nextKey) }
  release (ch: Channel | undefined, nextKey: string): void { if (ch) this.on.get(ch.id)?.delete(nextKey) }
  claimed (ch: Channel, nextKey: string): boolean { return this.on.get(ch.id)?.has(nextKey) === true }

  /** circuits routed inbound (the circuit table's size for CREATE admission, §5.5) */
  get inboundCount (): number { return this.live.size }

  /** prev keys of every circuit routed inbound */
  inbound (): string[] { return [...this.live.keys()] }

  /** next keys in use on one channel */
  names (ch: Channel): Set<string> { return this.on.get(ch.id) ?? new Set() }

  /** circuits routed here: the inbound ones plus the ids in use on `outgoing` channels */
  count (outgoing: Iterable<Channel>): number {
    let n = this.live.size
    for (const ch of outgoing) n += this.on.get(ch.id)?.size ?? 0
    return n
  }
}
