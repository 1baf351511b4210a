// A circuit ending at this relay for a reason of its own (docs/PROTOCOL.md §5.5): a
// failed EXTEND, its queue over the cap, the memory budget choosing it. Unlike a
// DESTROY passing through, both sides hear it at once, its queued cells are dropped,
// and it is remembered for a minute so the cells still on their way are dropped
// without an answer each (and a task still running for it cannot save it back).
import type { HopState } from '../../onion/circuits/hop-state.js'
import type { MiddleHopAction } from '../../onion/circuits/middle-hop.js'
import type { ErrorCode } from '../../errors.js'
import type { RelayEnd } from './perform.js'
import type { RelayContext } from './relay-context.js'
import { circuitKey } from './store-key.js'

/**
 * Carries out the middle hop's actions for circuit `key`; when they end the circuit, ends
 * it. True when the circuit ended (the caller must not save its state).
 */
export function performFor (x: RelayContext, key: string, hop: HopState | undefined, actions: MiddleHopAction[], end: RelayEnd): boolean {
  x.perform(actions, end)
  const e = actions.find((a) => a.type === 'end')
  if (!e) return false
  endCircuit(x, key, e.reason, e.code, hop)
  return true
}

/** whether `key` ended here lately */
export const hasEnded = (x: RelayContext, key: string): boolean => x.ended.get(key) === true

/**
 * Ends the circuit named `key` (its previous side's name): DESTROY `reason` towards the
 * previous hop, DESTROY 0 towards the next, queued cells dropped, state deleted. `hop`,
 * when the caller holds the current state; otherwise it is read from the store.
 */
export function endCircuit (x: RelayContext, key: string, reason: number, code: ErrorCode, hop?: HopState): void {
  if (hasEnded(x, key)) return
  x.ended.set(key, true)
  x.refused(code)
  x.queue.clear(key)
  const prev = x.routes.prev(key)
  if (prev) {
    prev.ch.dropQueued(prev.circId)
    x.perform([{ type: 'destroy', toward: 'prev', reason }], { prev, from: '-' })
  }
  x.routes.forget(key)
  void teardown(x, key, hop).catch((err) => x.reject('end', err))
}

async function teardown (x: RelayContext, key: string, held?: HopState): Promise<void> {
  const hop = held ?? await x.peek(key)
  await x.sessions.delete(key)
  if (!hop) return
  const nextCircId = hop.nextCircId
  const fp = hop.nextFingerprint?.toString('hex')
  hop.wipe()
  if (!nextCircId || !fp) return
  const nextKey = circuitKey('next', fp, nextCircId)
  const p = x.routes.pending.get(nextKey)
  if (p) {
    p.timer.cancel()
    x.routes.pending.delete(nextKey)
  }
  x.queue.clear(nextKey)
  await x.sessions.delete(nextKey)
  const next = x.channels.current(fp)
  if (!next) return
  next.dropQueued(nextCircId)
  x.perform([{ type: 'destroy', toward: 'next', reason: 0 }], { next: { ch: next, circId: nextCircId }, from: '-' })
  x.routes.release(next, nextKey)
}

/**
 * Ends the circuit whose next side is `nextKey` (a back pointer `b:…`, §5.3): its
 * previous side's name is read from the store first.
 */
export async function endByNextKey (x: RelayContext, nextKey: string, reason: number, code: ErrorCode): Promise<void> {
  x.queue.clear(nextKey)
  const back = await x.sessions.get(nextKey)
  if (back) endCircuit(x, Buffer.from(back).toString(), reason, code)
}
