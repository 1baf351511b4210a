// Cells from the next hop at a relay (on channels it opened): CREATED answering an
// extend, backward RELAY cells, DESTROY; plus what ends an extend without CREATED (its
// timeout, the channel closing). Found by the back pointer `b:<fp>:<circId>`; the hop
// record is the previous side's, so its work runs in that circuit's queue. The
// decisions are the middle hop's (src/onion/circuits/middle-hop.ts, docs/PROTOCOL.md §5);
// a failed extend ends the circuit, and backward cells wait in a bounded queue (§5.5).
import type { ChannelCell } from '../../onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import * as middle from '../../onion/circuits/middle-hop.js'
import { CLOSE, type Channel } from '../common/channel-types.js'
import { endByNextKey, performFor } from './end-circuit.js'
import type { RelayContext } from './relay-context.js'
import { circuitKey, nextFingerprintOf } from './store-key.js'

export function fromNext (x: RelayContext, next: Channel, cell: ChannelCell): void {
  const nextKey = circuitKey('next', next.peerFingerprint!, cell.circId)
  const verb = middle.fromNextVerb(cell.cmd)
  if (typeof verb === 'object') return next.close(CLOSE.PROTOCOL, verb.close)
  if (verb === 'created') return onCreated(x, next, nextKey, cell)
  if (verb === 'destroy' && x.routes.pending.has(nextKey)) return createRefused(x, next, nextKey, cell.data[0] ?? 0)
  if (verb === 'relay' && x.queue.full(nextKey)) {
    const e = middle.overQueue('MM_ERR_CIRCUIT_QUEUE')
    return void endByNextKey(x, nextKey, e.reason, e.code).catch((err) => x.reject('backward', err))
  }
  x.queue.run(nextKey, async () => {
    const back = await x.sessions.get(nextKey)
    if (!back) return x.reject('backward on unknown circuit')
    const prevKey = Buffer.from(back).toString()
    if (verb === 'destroy') return await destroyFromNext(x, nextKey, prevKey, cell.data[0] ?? 0)
    // this circuit's backward cells stay in order (nextKey's queue waits for prevKey's)
    await x.queue.run(prevKey, async () => {
      if (!x.routes.prev(prevKey)) return
      // the backward position is reserved in the store before the sealed cell leaves (§4.1)
      const r = await x.step(prevKey, (hop) => middle.onRelayFromNext(hop, cell.data))
      const prev = x.routes.prev(prevKey)
      if (!r || !prev) return
      x.perform(r.actions, { prev, from: next.remote, cell: cell.data })
    }, (err) => x.reject('backward', err))
  }, (err) => x.reject('backward', err), verb === 'relay' ? { bytes: CELL_SIZE, source: next.id } : undefined)
}

function onCreated (x: RelayContext, next: Channel, nextKey: string, cell: ChannelCell): void {
  const p = x.routes.pending.get(nextKey)
  if (!p) return next.close(CLOSE.PROTOCOL, 'CREATED for no pending CREATE')
  x.routes.pending.delete(nextKey)
  p.timer.cancel()
  x.queue.run(p.prevKey, async () => {
    if (!x.routes.prev(p.prevKey)) return
    const r = await x.step(p.prevKey, (hop) => ({ actions: middle.onCreated(hop, cell.data), save: true }))
    const prev = x.routes.prev(p.prevKey)
    if (!r || !prev) return
    x.perform(r.actions, { prev, from: next.remote })
  }, (err) => x.reject('created', err))
}

/** the next hop refused the extended CREATE (DESTROY), or closed the channel before answering */
export function createRefused (x: RelayContext, next: Channel, nextKey: string, reason: number, why?: string): void {
  const p = x.routes.pending.get(nextKey)!
  x.routes.pending.delete(nextKey)
  p.timer.cancel()
  x.routes.release(next, nextKey)
  x.queue.run(p.prevKey, async () => {
    await x.sessions.delete(nextKey)
    if (!x.routes.prev(p.prevKey)) return
    // the ERROR's backward position is reserved before it leaves; then the circuit ends
    const r = await x.step(p.prevKey, (hop) => ({ actions: middle.onCreateRefused(hop, reason, why), save: true }))
    const prev = x.routes.prev(p.prevKey)
    if (!r || !prev) return
    performFor(x, p.prevKey, r.l.hop, r.actions, { prev, from: next.remote })
  }, (err) => x.reject('create-refused', err))
}

/** no CREATED came for the extend on `nextKey` in time */
export function extendTimedOut (x: RelayContext, nextKey: string): void {
  const p = x.routes.pending.get(nextKey)
  if (!p) return
  x.routes.pending.delete(nextKey)
  x.queue.run(p.prevKey, async () => {
    if (!x.routes.prev(p.prevKey)) return
    const r = await x.step(p.prevKey, (hop) => ({ actions: middle.onExtendTimeout(hop), save: true }))
    const prev = x.routes.prev(p.prevKey)
    if (!r || !prev) return
    performFor(x, p.prevKey, r.l.hop, r.actions, { prev, from: prev.ch.remote })
  }, (err) => x.reject('extend-timeout', err))
}

async function destroyFromNext (x: RelayContext, nextKey: string, prevKey: string, reason: number): Promise<void> {
  x.routes.release(x.channels.current(nextFingerprintOf(nextKey)), nextKey)
  await x.sessions.delete(nextKey)
  const prev = x.routes.prev(prevKey)
  // the cells the previous hop sent before it hears this DESTROY are dropped unanswered (§5.5)
  x.ended.set(prevKey, true)
  x.queue.clear(prevKey)
  const hop = await x.peek(prevKey)
  await x.sessions.delete(prevKey)
  x.routes.forget(prevKey)
  const actions = middle.onDestroyFromNext(hop, reason)
  if (prev) x.perform(actions, { prev, from: '-' })
}

/** an outgoing channel closed: its pending extends are refused, its circuits destroyed backward */
export function nextChannelClosed (x: RelayContext, ch: Channel, names: Set<string>): void {
  for (const nextKey of names) {
    if (x.routes.pending.has(nextKey)) {
      createRefused(x, ch, nextKey, middle.NEXT_CHANNEL_CLOSED, 'closed the channel before answering CREATE')
      continue
    }
    x.queue.run(nextKey, async () => {
      const back = await x.sessions.get(nextKey)
      if (back) await destroyFromNext(x, nextKey, Buffer.from(back).toString(), middle.NEXT_CHANNEL_CLOSED)
    }, (err) => x.reject('close', err))
  }
}
