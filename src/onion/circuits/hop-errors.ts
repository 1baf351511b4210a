// What each HopError code means (docs/PROTOCOL.md §5.4), in one table: the name a
// DESTROY or ERROR is logged with, and the client's error code when a hop reports it
// while a circuit is being built (in a DESTROY answering CREATE, or an ERROR answering
// EXTEND). What a relay sends when is the relay's protocol, not this table's.
import { HopError } from '../cells/relay-msg.js'
import type { ErrorCode } from '../../errors.js'

export interface HopErrorMeaning {
  /** the enum name, as logs and error messages show it */
  name: string
  /** the client's code when hop 1 answers CREATE with DESTROY(reason) */
  onCreate: ErrorCode
  /** the client's code when the last hop answers EXTEND with ERROR(code) */
  onExtend: ErrorCode
}

export const HOP_ERRORS: Readonly<Record<HopError, HopErrorMeaning>> = {
  [HopError.NOT_LISTED]: { name: 'NOT_LISTED', onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_NOT_LISTED' },
  [HopError.UNREACHABLE]: { name: 'UNREACHABLE', onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
  // the hop could not open a handshake sealed to the listed identity key (P4)
  [HopError.HANDSHAKE]: { name: 'HANDSHAKE', onCreate: 'MM_ERR_HOP_AUTH', onExtend: 'MM_ERR_HOP_AUTH' },
  [HopError.BUSY]: { name: 'BUSY', onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
  [HopError.PROTOCOL]: { name: 'PROTOCOL', onCreate: 'MM_ERR_CIRCUIT_BUILD', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
  // another circuit from the same address (NAT) holds the id: the client retries with another
  [HopError.IN_USE]: { name: 'IN_USE', onCreate: 'MM_ERR_CIRCUIT_ID_IN_USE', onExtend: 'MM_ERR_CIRCUIT_BUILD' },
}

/** the meaning of a code off the wire, or undefined for a code this version does not know */
export const hopErrorMeaning = (code: number): HopErrorMeaning | undefined =>
  Object.hasOwn(HOP_ERRORS, code) ? HOP_ERRORS[code as HopError] : undefined

/** "BUSY", or "reason 9" for an unknown code (0: none, e.g. the client closing) */
export const hopErrorName = (code: number): string => hopErrorMeaning(code)?.name ?? `reason ${code}`
