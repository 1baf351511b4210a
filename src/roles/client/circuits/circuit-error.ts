// The error a client circuit fails with: which hop is to blame (1-based; 0: none, e.g.
// the client closed it, or nothing shows which hop failed), so the circuit manager can
// route around that hop and charge the guard's path-bias count. The codes
// and their meaning are in docs/PROTOCOL.md §5.4 and §9.
import { MarshmelloError, type ErrorCode } from '../../../errors.js'

/**
 * Thrown when a circuit cannot be built or dies. `hop` is the 1-based hop the failure is
 * evidence against (0: none, e.g. a timeout past the first hop, or the client closed it);
 * `at` is the hop being added when a build stopped (≥ 2: the first hop had answered).
 */
export class CircuitError extends MarshmelloError {
  readonly at: number
  constructor (readonly hop: number, code: ErrorCode, message: string, at?: number) {
    super(code, message)
    this.at = at ?? hop
  }
}
