// The middle hop's protocol (docs/PROTOCOL.md §5) as pure functions: given one
// circuit's HopState and what arrived (a cell from the previous or the next hop, a
// refusal, a timeout), they update the state and return the actions the relay role
// carries out in order. No sockets, timers or storage here: the role finds the state,
// calls one function, saves the state when told, and sends what it is given.
// What each HopError means is in hop-error.ts. Metering (§5.5): one EXTEND per circuit
// (a failed one ends the circuit), a CREATE budget per previous hop, relays included.
// A circuit that ends at this hop may ask it for the consensus (§7.3, directory-cache.ts).
import { ChannelCommand } from '../cells/channel-cell.js'
import { RelayCommand } from '../cells/layer.js'
import { HopError, decodeExtend, encodeError } from '../cells/relay-msg.js'
import { CREATED_LENGTH, relayRespond } from '../handshake/oaep-x25519.js'
import type { X25519Ephemeral } from '../crypto/primitives.js'
import type { Descriptor } from '../directory/descriptor.js'
import { sameIp } from '../directory/address.js'
import type { ErrorCode } from '../../errors.js'
import { HopState } from './hop-state.js'
import { hopErrorName, relayedRefusal } from './hop-error.js'
import { answerDirectoryRequest, type DirectoryDocument } from './directory-cache.js'

export type MiddleHopAction =
  /** a RELAY cell on to the next hop: the layer under this hop's (FORWARD) */
  | { type: 'forward', data: Buffer }
  /** a RELAY cell back to the previous hop: a later hop's layer wrapped in this hop's */
  | { type: 'backward', data: Buffer }
  /** a RELAY cell this hop originates to the client: EXTENDED, or ERROR `error` */
  | { type: 'answer', data: Buffer, error?: HopError }
  /** CREATED to the previous hop: the circuit exists here now */
  | { type: 'created', data: Buffer }
  /** CREATE on the next channel, with the circuit id the role chose (see extendTo) */
  | { type: 'create-next', data: Buffer }
  /** open (or reuse) the channel to this listed hop, pick a circuit id on it, then call extendTo() */
  | { type: 'extend', fingerprint: Buffer, target: Descriptor, create: Buffer }
  /** DESTROY towards one side, with a reason (§5.4; 0 = none) */
  | { type: 'destroy', toward: 'prev' | 'next', reason: number }
  /** nothing to send: the cell is dropped and counted, no state changed (P6) */
  | { type: 'drop', what: string, err?: unknown }
  /**
   * the circuit ends at this hop (§5.5): DESTROY `reason` towards the previous hop, DESTROY 0
   * towards the next when extended; the role deletes its state and drops its queued cells.
   * `code` says why (src/error-codes.ts), for counters and logs
   */
  | { type: 'end', reason: number, code: ErrorCode }

/** what a cell from one side asks of the hop, or why it closes the channel */
export type CellVerb = 'create' | 'created' | 'relay' | 'destroy' | { close: string }

/** channel commands a relay takes from the previous hop (it is the responder there) */
export function fromPrevVerb (cmd: ChannelCommand): CellVerb {
  switch (cmd) {
    case ChannelCommand.CREATE: return 'create'
    case ChannelCommand.RELAY: return 'relay'
    case ChannelCommand.DESTROY: return 'destroy'
    default: return { close: `channel command ${cmd} is not valid towards the responder` }
  }
}

/** channel commands a relay takes from the next hop (it is the initiator there) */
export function fromNextVerb (cmd: ChannelCommand): CellVerb {
  switch (cmd) {
    case ChannelCommand.CREATED: return 'created'
    case ChannelCommand.RELAY: return 'relay'
    case ChannelCommand.DESTROY: return 'destroy'
    default: return { close: `channel command ${cmd} is not valid towards the initiator` }
  }
}

/* ------------------------------------------------------------------ CREATE -- */

export interface CreateAdmission {
  /** the id names a circuit that still arrives on this very channel */
  reusesLiveId: boolean
  /** the channel's peer proved with AUTH (§2.3) to be a relay listed in the current consensus */
  fromListedRelay: boolean
  /**
   * takes one token from the previous hop's CREATE budget (§5.5): a proven listed relay's
   * (per fingerprint, the larger one) or else the sender address's; false when it is spent
   */
  takeToken: (budget: 'relay' | 'address') => boolean
  /** the hop's circuit table is full */
  tableFull: boolean
}

/** a CREATE refused before any handshake work: DESTROY BUSY, and why */
export type CreateRefusal = { refuse: MiddleHopAction[], code: ErrorCode }

/**
 * Whether a CREATE may go on to the handshake: a live id reused on its own channel
 * closes the channel; a previous hop over its CREATE budget is refused BUSY (a listed
 * relay has a larger budget, since many clients' circuits arrive through it, but never
 * none); a full circuit table refuses BUSY too, and never evicts a live circuit.
 */
export function admitCreate (a: CreateAdmission): 'admit' | { close: string } | CreateRefusal {
  if (a.reusesLiveId) return { close: 'CREATE reuses a live circuit id' }
  if (a.tableFull) return { refuse: busy(), code: 'MM_ERR_BUSY' }
  if (!a.takeToken(a.fromListedRelay ? 'relay' : 'address')) return { refuse: busy(), code: 'MM_ERR_CREATE_RATE' }
  return 'admit'
}

const busy = (): MiddleHopAction[] => [{ type: 'destroy', toward: 'prev', reason: HopError.BUSY }]

/** the circuit table is full (§5.5): BUSY, and no live circuit is evicted to make room */
export const circuitTableFull = busy

/** the id is taken (a NAT neighbour, or another process of this relay): refused, never merged */
export const createInUse = (): MiddleHopAction[] =>
  [{ type: 'destroy', toward: 'prev', reason: HopError.IN_USE }, { type: 'drop', what: 'create on a circuit id in use' }]

export interface HopKeyring {
  identityPrivate: Buffer
  fingerprint: Buffer
}

/** answers a CREATE (§5.1): a new hop and CREATED, or DESTROY HANDSHAKE when it cannot be opened */
export function answerCreate (k: HopKeyring, data: Buffer, ephemeral?: X25519Ephemeral): { hop?: HopState, actions: MiddleHopAction[] } {
  try {
    const r = relayRespond({ identityPrivate: k.identityPrivate, fingerprint: k.fingerprint, create: data, ephemeral })
    return { hop: new HopState(r.keys), actions: [{ type: 'created', data: r.created }] }
  } catch (err) {
    return { actions: [{ type: 'drop', what: 'create', err }, { type: 'destroy', toward: 'prev', reason: HopError.HANDSHAKE }] }
  }
}

/* ------------------------------------------------------------------ RELAY --- */

const answerError = (hop: HopState, code: HopError, reason: string): MiddleHopAction =>
  ({ type: 'answer', data: hop.originate(RelayCommand.ERROR, encodeError({ code, reason })), error: code })

/** RELAY before CREATE, or after the circuit expired: after this DESTROY the id is free again */
export const unknownCircuit = (): MiddleHopAction[] =>
  [{ type: 'destroy', toward: 'prev', reason: HopError.PROTOCOL }, { type: 'drop', what: 'relay on unknown circuit' }]

/** the hop listed with this (hex) fingerprint in the current consensus, relay or server */
export type ListedHops = (fingerprintHex: string) => Descriptor | undefined

/**
 * A RELAY cell from the previous hop (§5.3): peels this hop's layer and acts on it.
 * `save` is false when the cell was dropped (the state is unchanged and need not be written);
 * `end` is true when the circuit must end here and beyond (destroy its state, DESTROY onward).
 */
export function onRelayFromPrev (hop: HopState, data: Buffer, listed: ListedHops, directory?: DirectoryDocument): { actions: MiddleHopAction[], save: boolean, end?: true } {
  let layer
  try {
    layer = hop.peel(data)
  } catch (err) {
    // the nonce is the cell's position (§3): a cell dropped, repeated, reordered or altered
    // before this hop; the circuit can no longer be trusted (§4, P6)
    return { actions: [{ type: 'drop', what: 'peel', err }, { type: 'destroy', toward: 'prev', reason: HopError.INTEGRITY }], save: false, end: true }
  }
  switch (layer.cmd) {
    case RelayCommand.FORWARD:
      if (!hop.nextCircId) return { actions: [nextUnreachable(hop)], save: true }
      return { actions: [{ type: 'forward', data: layer.body }], save: true }
    case RelayCommand.EXTEND:
      return { actions: onExtend(hop, layer.body, listed), save: true }
    case RelayCommand.DROP:
      return { actions: [], save: true }
    case RelayCommand.DATA: {
      // a circuit that ends here (a client's one-hop circuit): a directory request (§7.3)
      const bodies = !hop.nextCircId && directory ? answerDirectoryRequest(layer.body, directory) : null
      if (bodies) return { actions: bodies.map((b) => ({ type: 'answer', data: hop.originate(RelayCommand.DATA, b) })), save: true }
      return { actions: [answerError(hop, HopError.PROTOCOL, 'DATA is for the final hop, or a directory request on a circuit that ends here')], save: true }
    }
    default:
      return { actions: [answerError(hop, HopError.PROTOCOL, `relay command ${layer.cmd} is not for a middle hop`)], save: true }
  }
}

/** FORWARD with no next hop, or its channel gone (§5.3) */
export const nextUnreachable = (hop: HopState): MiddleHopAction => answerError(hop, HopError.UNREACHABLE, 'no next hop on this circuit')

/**
 * A failed EXTEND (§5.5): the client learns why from this hop (ERROR `code`), then the
 * circuit ends (DESTROY `code`). One EXTEND per circuit: a circuit cannot be used to
 * make the next hop do handshake after handshake.
 */
const extendFailed = (hop: HopState, code: HopError, reason: string): MiddleHopAction[] =>
  [answerError(hop, code, reason), { type: 'end', reason: code, code: 'MM_ERR_EXTEND_FAILED' }]

/** EXTEND (§5.2): once per circuit, only to a hop listed in the consensus at exactly its listed address (P7) */
function onExtend (hop: HopState, body: Buffer, listed: ListedHops): MiddleHopAction[] {
  if (hop.nextCircId) return extendFailed(hop, HopError.PROTOCOL, 'circuit is already extended')
  let ext
  try {
    ext = decodeExtend(body)
  } catch {
    return extendFailed(hop, HopError.PROTOCOL, 'malformed EXTEND')
  }
  const target = listed(ext.fingerprint.toString('hex'))
  // compared as parsed addresses (::ffff:192.0.2.1 is 192.0.2.1), never as strings
  if (!target || !sameIp(target.host, ext.host) || target.port !== ext.port) {
    return extendFailed(hop, HopError.NOT_LISTED, `${ext.host}:${ext.port} is not a hop listed in the consensus`)
  }
  return [{ type: 'extend', fingerprint: ext.fingerprint, target, create: ext.create }]
}

/** the channel to the EXTEND's target could not be opened (or not within the extend timeout) */
export const extendUnreachable = (hop: HopState, target: Descriptor): MiddleHopAction[] =>
  extendFailed(hop, HopError.UNREACHABLE, `cannot reach ${target.nickname || target.host + ':' + target.port}`)

/** the channel is open and `nextCircId` claimed on it: the circuit continues there */
export function extendTo (hop: HopState, nextCircId: number, fingerprint: Buffer, create: Buffer): MiddleHopAction[] {
  hop.nextCircId = nextCircId
  hop.nextFingerprint = fingerprint
  return [{ type: 'create-next', data: create }]
}

/** the next hop answered the extended CREATE: EXTENDED, originated by this hop */
export const onCreated = (hop: HopState, data: Buffer): MiddleHopAction[] =>
  [{ type: 'answer', data: hop.originate(RelayCommand.EXTENDED, data.subarray(0, CREATED_LENGTH)) }]

/** no CREATED in time (§5.2): the EXTEND failed */
export const onExtendTimeout = (hop: HopState): MiddleHopAction[] =>
  extendFailed(hop, HopError.UNREACHABLE, 'next hop did not answer CREATE')

/**
 * The next hop answered the extended CREATE with DESTROY `reason` (or closed the channel
 * first: `why` says so). The client learns it as an ERROR from this hop, so it can tell
 * which hop failed; then the circuit ends (§5.5: one EXTEND per circuit).
 */
export function onCreateRefused (hop: HopState, reason: number, why = 'refused CREATE'): MiddleHopAction[] {
  hop.nextCircId = 0
  hop.nextFingerprint = null
  const code = relayedRefusal(reason)
  return extendFailed(hop, code, `next hop ${why} (${hopErrorName(code)})`)
}

/** the circuit's queue at this hop passed its cap, or the relay's memory budget chose it (§5.5) */
export const overQueue = (code: 'MM_ERR_CIRCUIT_QUEUE' | 'MM_ERR_QUEUE_MEMORY' | 'MM_ERR_PEER_STALLED'): Extract<MiddleHopAction, { type: 'end' }> =>
  ({ type: 'end', reason: HopError.BUSY, code })

/** a RELAY cell from the next hop: wrapped in this hop's backward layer */
export function onRelayFromNext (hop: HopState, data: Buffer): { actions: MiddleHopAction[], save: boolean } {
  try {
    return { actions: [{ type: 'backward', data: hop.wrapBackward(data) }], save: true }
  } catch (err) {
    return { actions: [{ type: 'drop', what: 'wrap', err }], save: false }
  }
}

/* ---------------------------------------------------------------- DESTROY -- */

/** DESTROY from the previous hop (or its channel gone): wiped; the next hop hears reason 0 (§5.4) */
export function onDestroyFromPrev (hop: HopState): MiddleHopAction[] {
  hop.wipe()
  return hop.nextCircId ? [{ type: 'destroy', toward: 'next', reason: 0 }] : []
}

/** DESTROY from the next hop (or its channel gone: UNREACHABLE): wiped; the reason is passed back */
export function onDestroyFromNext (hop: HopState | undefined, reason: number): MiddleHopAction[] {
  hop?.wipe()
  return [{ type: 'destroy', toward: 'prev', reason }]
}

/** a store the circuit lives in is unreachable: the previous hop learns it at once (BUSY) */
export const storeUnavailable = (): MiddleHopAction[] => [{ type: 'destroy', toward: 'prev', reason: HopError.BUSY }]

/** the reason DESTROY carries when the next channel closed under a circuit */
export const NEXT_CHANNEL_CLOSED = HopError.UNREACHABLE
