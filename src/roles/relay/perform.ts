// Carries out the middle hop's actions (src/onion/circuits/middle-hop.ts) on a relay's
// channels: encodes each as a channel cell with the circuit id of the side it goes to,
// counts it, and writes a trace line when tracing. Decides nothing.
import { ChannelCommand, encodeChannelCell } from '../../onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { HopError } from '../../onion/cells/relay-msg.js'
import type { MiddleHopAction } from '../../onion/circuits/middle-hop.js'
import type { Channel } from '../common/channel-types.js'
import type { ErrorCode } from '../../errors.js'

export interface TraceEvent {
  dir: 'forward' | 'backward' | 'create'
  from: string
  to: string
  size: number
  /** the cell data this relay received (only written with --trace-cells) */
  cell?: Buffer
}

export class RelayCounters {
  circuitsCreated = 0
  cellsForwarded = 0
  cellsBackward = 0
  cellsRejected = 0
  handshakesRefused = 0
  extendsRefused = 0
  /** accepted channels whose peer proved a listed relay's identity (AUTH) */
  channelsAuthenticated = 0
  /** accepted channels closed because their AUTH did not verify */
  authRefused = 0
  /** refusals and circuits ended here by code (src/error-codes.ts: MM_ERR_CREATE_RATE, MM_ERR_BUSY, MM_ERR_EXTEND_FAILED, MM_ERR_CIRCUIT_QUEUE, MM_ERR_QUEUE_MEMORY, MM_ERR_PEER_STALLED) */
  refusals: Partial<Record<ErrorCode, number>> = {}
}

/** one side of a circuit at this relay: the channel and the circuit id on it */
export interface CircuitEnd { ch: Channel, circId: number }

/** where a circuit's actions go: its two ends as far as they exist, and for the trace where the cell came from */
export interface RelayEnd {
  prev?: CircuitEnd
  next?: CircuitEnd
  from: string
  /** the received cell's data (trace) */
  cell?: Buffer
  /** the received cell's size, when not a whole cell (trace of a CREATE) */
  size?: number
}

export interface Performer {
  counters: RelayCounters
  reject: (what: string, err?: unknown) => void
  trace?: (e: TraceEvent) => void
}

export function apply (actions: MiddleHopAction[], end: RelayEnd, p: Performer): void {
  const { prev, next } = end
  const to = (e: CircuitEnd | undefined, cmd: ChannelCommand, data: Uint8Array): boolean => {
    if (!e) return false
    e.ch.send(encodeChannelCell(e.circId, cmd, data))
    return true
  }
  for (const a of actions) {
    switch (a.type) {
      case 'forward':
        if (!to(next, ChannelCommand.RELAY, a.data)) break
        p.counters.cellsForwarded++
        p.trace?.({ dir: 'forward', from: end.from, to: next!.ch.remote, size: CELL_SIZE, cell: end.cell })
        break
      case 'backward':
        if (!to(prev, ChannelCommand.RELAY, a.data)) break
        p.counters.cellsBackward++
        p.trace?.({ dir: 'backward', from: end.from, to: prev!.ch.remote, size: CELL_SIZE, cell: end.cell })
        break
      case 'answer':
        if (a.error === HopError.NOT_LISTED) p.counters.extendsRefused++
        if (!to(prev, ChannelCommand.RELAY, a.data)) break
        if (a.error === undefined) p.trace?.({ dir: 'backward', from: end.from, to: prev!.ch.remote, size: CELL_SIZE })
        break
      case 'created':
        if (!to(prev, ChannelCommand.CREATED, a.data)) break
        p.counters.circuitsCreated++
        p.trace?.({ dir: 'create', from: prev!.ch.remote, to: '-', size: end.size ?? CELL_SIZE })
        break
      case 'create-next':
        if (!to(next, ChannelCommand.CREATE, a.data)) break
        p.trace?.({ dir: 'forward', from: end.from, to: next!.ch.remote, size: CELL_SIZE })
        break
      case 'destroy':
        to(a.toward === 'prev' ? prev : next, ChannelCommand.DESTROY, Buffer.from([a.reason]))
        break
      case 'drop':
        p.reject(a.what, a.err)
        break
      case 'extend':
        break // the caller opens the channel first (relay-core)
      case 'end':
        break // the caller tears the circuit down (end-circuit.ts)
    }
  }
}
