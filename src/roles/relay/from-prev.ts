// Cells from the previous hop (or a client) at a relay: CREATE, RELAY, DESTROY, handed
// to the middle hop (src/onion/circuits/middle-hop.ts, docs/PROTOCOL.md §5) under the
// circuit's store key `<ip>:<circId>`; the extend that a RELAY EXTEND asks for (open the
// channel, claim an id on it, time the CREATE out). Each circuit's cells wait in its
// own bounded queue (§5.5: over the cap the circuit ends, not the channel). No
// protocol rule is decided here.
import { DIRECTORY_REFUSED } from '../../onion/circuits/directory-cache.js'
import { randomInt } from '../../onion/crypto/random.js'
import { isMarshmelloError } from '../../errors.js'
import type { ChannelCell } from '../../onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import * as middle from '../../onion/circuits/middle-hop.js'
import { CLOSE, type Channel } from '../common/channel-types.js'
import { endCircuit, hasEnded, performFor } from './end-circuit.js'
import { extendTimedOut } from './from-next.js'
import type { CircuitEnd } from './perform.js'
import type { LoadedHop, RelayContext } from './relay-context.js'
import { HopError } from '../../onion/cells/relay-msg.js'
import { circuitKey, peerIp } from './store-key.js'

export function fromPrev (x: RelayContext, ch: Channel, cell: ChannelCell): void {
  const key = circuitKey('prev', ch.remote, cell.circId)
  const verb = middle.fromPrevVerb(cell.cmd)
  if (verb === 'create') return onCreate(x, ch, cell, key)
  if (typeof verb === 'object') return ch.close(CLOSE.PROTOCOL, verb.close)
  // a circuit ended here: what was already on its way is dropped, unanswered (a DESTROY ends it)
  if (hasEnded(x, key)) {
    if (verb === 'relay') x.reject('relay on an ended circuit')
    return
  }
  if (verb === 'relay') {
    if (x.queue.full(key)) {
      const e = middle.overQueue('MM_ERR_CIRCUIT_QUEUE')
      return endCircuit(x, key, e.reason, e.code)
    }
    void x.queue.run(key, () => onRelay(x, ch, cell, key), (err) => storeFailed(x, { ch, circId: cell.circId }, key, 'forward', err), { bytes: CELL_SIZE, source: ch.id })
  } else if (verb === 'destroy') {
    void x.queue.run(key, () => destroyFromPrev(x, key), (err) => x.reject('destroy', err))
  }
}

function onCreate (x: RelayContext, ch: Channel, cell: ChannelCell, key: string): void {
  const prev = { ch, circId: cell.circId }
  const end = { prev, from: ch.remote }
  const fromListedRelay = ch.authenticatedPeer !== undefined && x.listed(ch.authenticatedPeer)?.role === 'relay'
  const admission = middle.admitCreate({
    reusesLiveId: x.routes.arrivesOn(key) === ch,
    // a listed relay's CREATEs extend many clients' circuits: only a proof of its identity
    // on this channel gives them the relay budget (still listed in this consensus), per relay
    fromListedRelay,
    takeToken: (budget) => budget === 'relay' ? x.relayBuckets.take(ch.authenticatedPeer!) : x.buckets.take(peerIp(ch.remote)),
    tableFull: x.routes.inboundCount >= x.opt.maxCircuits,
  })
  if (admission === 'admit') {
    x.ended.delete(key) // a new circuit on the id of one ended here
    x.queue.run(key, () => handshake(x, ch, cell, key), (err) => storeFailed(x, prev, key, 'create-store', err))
  } else if ('refuse' in admission) {
    x.counters.handshakesRefused++
    x.refused(admission.code)
    if (admission.code === 'MM_ERR_BUSY') x.tableFull()
    x.perform(admission.refuse, end)
  } else {
    ch.close(CLOSE.PROTOCOL, admission.close)
  }
}

async function handshake (x: RelayContext, ch: Channel, cell: ChannelCell, key: string): Promise<void> {
  const end = { prev: { ch, circId: cell.circId }, from: ch.remote }
  // the id's circuit came on a channel that has closed since: the peer reuses the
  // id, so that circuit is over (as after a DESTROY) and the id is free again
  if (x.routes.arrivesOn(key)?.closed === true) await destroyFromPrev(x, key)
  // taken by another live channel from this address (a NAT neighbour), or by a
  // circuit another process of this relay serves
  if (x.routes.arrivesOn(key) || await x.sessions.get(key) !== undefined) return x.perform(middle.createInUse(), end)
  // the table may have filled while this CREATE waited (§5.5): refused, nothing evicted
  if (x.routes.inboundCount + x.handshaking >= x.opt.maxCircuits) {
    x.counters.handshakesRefused++
    x.refused('MM_ERR_BUSY')
    x.tableFull()
    return x.perform(middle.circuitTableFull(), end)
  }
  x.handshaking++
  try {
    const { hop, actions } = middle.answerCreate({ identityPrivate: x.init.identity.privateDer, fingerprint: x.init.identity.fingerprint }, cell.data, x.ephemerals.take())
    if (!hop) return x.perform(actions, end)
    // create, not set: another process sharing the store may have taken the id since
    if (!await x.sessions.create(key, x.record(hop))) {
      hop.wipe()
      return x.perform(middle.createInUse(), end)
    }
    x.routes.follow(key, ch)
    x.perform(actions, { ...end, size: cell.data.length + 5 })
  } finally {
    x.handshaking--
  }
}

/**
 * A store operation failed. When the store is unreachable (MM_ERR_STORE_UNAVAILABLE)
 * the previous hop learns it at once instead of waiting for a timeout; the shared
 * record, if any, expires by its TTL.
 */
function storeFailed (x: RelayContext, prev: CircuitEnd, key: string, what: string, err: unknown): void {
  x.reject(what, err)
  if (isMarshmelloError(err) && err.code === 'MM_ERR_STORE_UNAVAILABLE') {
    x.routes.forget(key)
    x.perform(middle.storeUnavailable(), { prev, from: prev.ch.remote })
  }
}

async function onRelay (x: RelayContext, ch: Channel, cell: ChannelCell, key: string): Promise<void> {
  const prev = { ch, circId: cell.circId }
  // the forward position this cell opened at (and any answer sealed for it) is in the
  // store before anything leaves (§4.1); another process's write first: re-read, retry
  const doc = x.c.directoryDocument
  // the cache's budget per client address (§7.3), spent only by a well-formed directory request
  const directory = doc && (() => x.directoryBuckets.take(peerIp(ch.remote)) ? doc() : DIRECTORY_REFUSED)
  const r = await x.step(key, (hop) => middle.onRelayFromPrev(hop, cell.data, x.listed, directory))
  if (r === undefined) {
    if (x.routes.arrivesOn(key) === ch) x.routes.forget(key)
    return x.perform(middle.unknownCircuit(), { prev, from: ch.remote })
  }
  if (!r) return
  const { actions, save, end, l } = r
  const hop = l.hop
  if (!save) x.perform(actions, { prev, from: ch.remote })
  // a cell out of sequence (PROTOCOL §4): the circuit ends here, and beyond with DESTROY
  if (end) return await destroyFromPrev(x, key)
  if (!save) return
  x.routes.follow(key, ch)
  if (actions.some((a) => a.type === 'end')) {
    performFor(x, key, hop, actions, { prev, from: ch.remote })
    return
  }
  for (const a of actions) {
    if (a.type === 'forward') {
      const fp = hop.nextFingerprint!.toString('hex')
      const next = await x.channels.to(fp, x.listed(fp)).catch(() => null)
      if (!next || next.closed) {
        const answer = middle.nextUnreachable(hop)
        if (!await reserveOrEnd(x, key, l)) return
        x.perform([answer], { prev, from: ch.remote })
        continue
      }
      // a channel opened by this process for a circuit another process extended
      x.routes.claim(next, circuitKey('next', fp, hop.nextCircId))
      x.perform([a], { prev, next: { ch: next, circId: hop.nextCircId }, from: ch.remote, cell: cell.data })
    } else if (a.type === 'extend') {
      if (!await extend(x, prev, key, l, a)) return
    } else {
      x.perform([a], { prev, from: ch.remote })
    }
  }
}

/** reserves what was sealed after the step (§4.1); when another write came first the circuit ends and nothing is sent */
async function reserveOrEnd (x: RelayContext, key: string, l: LoadedHop): Promise<boolean> {
  if (await x.reserve(key, l)) return true
  endCircuit(x, key, HopError.INTEGRITY, 'MM_ERR_SESSION_CONFLICT', l.hop)
  return false
}

/** opens (or reuses) the channel and sends the CREATE; false when the circuit ended instead */
async function extend (x: RelayContext, prev: CircuitEnd, key: string, l: LoadedHop, a: Extract<middle.MiddleHopAction, { type: 'extend' }>): Promise<boolean> {
  const hop = l.hop
  const fp = a.fingerprint.toString('hex')
  let next: Channel | null
  // a next hop that never completes the channel is as unreachable as one that refuses it (§5.5)
  let timer: { cancel (): void } | undefined
  const timeout = new Promise<null>((resolve) => { timer = x.clock.setTimeout(() => resolve(null), x.opt.extendTimeoutMs) })
  try {
    next = await Promise.race([x.channels.to(fp, a.target), timeout])
  } catch {
    next = null
  } finally {
    timer?.cancel()
  }
  if (hasEnded(x, key)) return false // ended while the channel opened (the memory budget)
  if (!next || next.closed) {
    const actions = middle.extendUnreachable(hop, a.target)
    if (!await reserveOrEnd(x, key, l)) return false
    return !performFor(x, key, hop, actions, { prev, from: prev.ch.remote })
  }
  let nextCircId: number
  let nextKey: string
  // ids on a channel another process of this relay opened are only in the store, and
  // create() is atomic there: two processes never claim one id for two circuits
  do {
    nextCircId = randomInt(1, 0xffffffff)
    nextKey = circuitKey('next', fp, nextCircId)
  } while (x.routes.claimed(next, nextKey) || x.routes.pending.has(nextKey) || !await x.sessions.create(nextKey, Buffer.from(key)))
  const actions = middle.extendTo(hop, nextCircId, a.fingerprint, a.create)
  // the next hop is in the record before the CREATE goes
  if (!await x.reserve(key, l)) {
    await x.sessions.delete(nextKey)
    endCircuit(x, key, HopError.INTEGRITY, 'MM_ERR_SESSION_CONFLICT')
    return false
  }
  x.routes.claim(next, nextKey)
  const created = x.clock.setTimeout(() => extendTimedOut(x, nextKey), x.opt.extendTimeoutMs)
  x.routes.pending.set(nextKey, { prevKey: key, timer: created })
  x.perform(actions, { prev, next: { ch: next, circId: nextCircId }, from: prev.ch.remote })
  return true
}

/** DESTROY from the previous hop, or its channel gone for good: the circuit ends here and beyond */
export async function destroyFromPrev (x: RelayContext, key: string): Promise<void> {
  const hop = await x.peek(key)
  x.routes.forget(key)
  await x.sessions.delete(key)
  if (!hop) return
  const actions = middle.onDestroyFromPrev(hop)
  if (!hop.nextCircId) return
  const fp = hop.nextFingerprint!.toString('hex')
  const nextKey = circuitKey('next', fp, hop.nextCircId)
  await x.sessions.delete(nextKey)
  const next = x.channels.current(fp)
  if (!next) return
  x.perform(actions, { next: { ch: next, circId: hop.nextCircId }, from: '-' })
  x.routes.release(next, nextKey)
}
