// What each HopError means (docs/PROTOCOL.md §5.4), in one table for every hop and the
// client: when a hop sends it, what a middle hop reports to the client when its next
// hop refused a CREATE with it, and the error code a client raises for it while
// building (a DESTROY answering its CREATE, or an ERROR answering its EXTEND). The
// codes themselves (the wire values) are HopError in src/onion/cells/relay-msg.ts.
import { HopError } from '../cells/relay-msg.js'
import type { ErrorCode } from '../../errors.js'

export interface HopErrorMeaning {
  /** the enum name, as logs and error messages show it */
  name: string
  /** when a hop sends it (ERROR from a middle hop, DESTROY at CREATE) */
  meaning: string
  /** what a middle hop reports (ERROR) when its next hop answers the extended CREATE with DESTROY(this) */
  relayedAs: HopError
  /** the client's code when hop 1 answers CREATE with DESTROY(this) */
  onCreate: ErrorCode
  /** the client's code when the last hop answers EXTEND with ERROR(this); after the build every reason is MM_ERR_CIRCUIT_CLOSED */
  onExtend: ErrorCode
}

export const HOP_ERRORS: Readonly<Record<HopError, HopErrorMeaning>> = {
  [HopError.NOT_LISTED]: { name: 'NOT_LISTED', meaning: 'EXTEND target not in the signed consensus (or its host or port differ): P7', relayedAs: HopError.UNREACHABLE, onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_NOT_LISTED' },
  [HopError.UNREACHABLE]: { name: 'UNREACHABLE', meaning: 'the next hop could not be reached, did not answer, or the circuit has no next hop', relayedAs: HopError.UNREACHABLE, onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
  [HopError.HANDSHAKE]: { name: 'HANDSHAKE', meaning: 'the hop could not open the CREATE: it does not hold the listed identity key (P4)', relayedAs: HopError.HANDSHAKE, onCreate: 'MM_ERR_HOP_AUTH', onExtend: 'MM_ERR_HOP_AUTH' },
  [HopError.BUSY]: { name: 'BUSY', meaning: 'the hop is overloaded: its circuit table is full, the previous hop is over its CREATE budget, its store is unreachable, or (DESTROY after the build) the circuit\'s queue passed its cap or the memory budget ended it (PROTOCOL §5.5)', relayedAs: HopError.BUSY, onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
  [HopError.PROTOCOL]: { name: 'PROTOCOL', meaning: 'malformed or unexpected request, or a cell for a circuit the hop does not know', relayedAs: HopError.UNREACHABLE, onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
  // another circuit from the same address (NAT) holds the id: the client retries with another
  [HopError.IN_USE]: { name: 'IN_USE', meaning: 'CREATE: the circuit id is in use from the sender\'s address (DESTROY only); retry with another id', relayedAs: HopError.UNREACHABLE, onCreate: 'MM_ERR_CIRCUIT_ID_IN_USE', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
  // DESTROY only, after the circuit carried RELAY cells: the client sees MM_ERR_CIRCUIT_INTEGRITY whenever it comes
  [HopError.INTEGRITY]: { name: 'INTEGRITY', meaning: 'a cell did not open at its position: dropped, repeated, reordered or altered before this hop (DESTROY only)', relayedAs: HopError.UNREACHABLE, onCreate: 'MM_ERR_CIRCUIT_INTEGRITY', onExtend: 'MM_ERR_CIRCUIT_INTEGRITY' },
}

/** the table's entry for a reason byte or ERROR code from the wire; undefined for 0 and unknown values */
export function hopErrorMeaning (code: number): HopErrorMeaning | undefined {
  return Object.hasOwn(HOP_ERRORS, code) ? HOP_ERRORS[code as HopError] : undefined
}

/** a reason's name for messages: `BUSY`, or `reason 9` for a value the table does not know (0: none) */
export function hopErrorName (code: number): string {
  return hopErrorMeaning(code)?.name ?? `reason ${code}`
}

/** what a middle hop tells the client when its next hop refused the extended CREATE with `reason` */
export function relayedRefusal (reason: number): HopError {
  return hopErrorMeaning(reason)?.relayedAs ?? HopError.UNREACHABLE
}
