// The error a client circuit fails with: which hop is to blame (1-based; 0: none, e.g.
// the client closed it), so the circuit manager can route around that hop. The codes
// and their meaning are in docs/PROTOCOL.md §5.4 and §9.
import { MarshmelloError, type ErrorCode } from '../../../errors.js'

/** Thrown when a circuit cannot be built or dies; `hop` is 1-based (0: the channel itself or the client). */
export class CircuitError extends MarshmelloError {
  constructor (readonly hop: number, code: ErrorCode, message: string) {
    super(code, message)
  }
}
