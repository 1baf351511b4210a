// The relay's memory budget for queued cells (docs/PROTOCOL.md §5.5), as Tor's
// MaxMemInQueues: when the cells waiting in all queues (each circuit's work queue and
// each channel's per-circuit send queues) pass the budget, the circuits holding the
// oldest waiting cell end first, until the total is back under 90% of it. A circuit
// that moves its cells along never holds old data; one stalled behind a dead hop does.
import { overQueue } from '../../onion/circuits/middle-hop.js'
import type { Channel } from '../common/channel-types.js'
import { endByNextKey, endCircuit } from './end-circuit.js'
import type { RelayContext } from './relay-context.js'
import { circuitKey } from './store-key.js'

/** what the budget leaves queued after it acted, as a share of the budget */
export const RECLAIM_TO = 0.9

const reclaiming = new WeakSet<RelayContext>()

export function reclaim (x: RelayContext): void {
  if (reclaiming.has(x)) return // ending a circuit sends DESTROYs, which may queue
  reclaiming.add(x)
  try {
    const target = x.opt.maxQueuedBytes * RECLAIM_TO
    const candidates: { seq: number, end: () => void }[] = []
    for (const l of x.queue.byAge()) candidates.push({ seq: l.seq, end: () => endByKey(x, l.key, 'MM_ERR_QUEUE_MEMORY') })
    for (const ch of x.channels.values()) {
      for (const q of ch.queuedCircuits()) candidates.push({ seq: q.seq, end: () => endOnChannel(x, ch, q.circId, 'MM_ERR_QUEUE_MEMORY') })
    }
    candidates.sort((a, b) => a.seq - b.seq)
    for (const c of candidates) {
      if (x.queuedBytes <= target) break
      c.end()
    }
  } finally {
    reclaiming.delete(x)
  }
}

type QueueCode = 'MM_ERR_QUEUE_MEMORY' | 'MM_ERR_CIRCUIT_QUEUE'

/** ends the circuit a work queue belongs to (a previous side's name, or a back pointer) */
function endByKey (x: RelayContext, key: string, code: QueueCode): void {
  const e = overQueue(code)
  if (key.startsWith('b:')) void endByNextKey(x, key, e.reason, e.code).catch((err) => x.reject('end', err))
  else endCircuit(x, key, e.reason, e.code)
}

/** ends the circuit whose cells wait on `ch` under `circId` (their queue is dropped first) */
export function endOnChannel (x: RelayContext, ch: Channel, circId: number, code: QueueCode): void {
  ch.dropQueued(circId)
  if (ch.initiator) {
    if (ch.peerFingerprint) endByKey(x, circuitKey('next', ch.peerFingerprint, circId), code)
  } else {
    endByKey(x, circuitKey('prev', ch.remote, circId), code)
  }
}
