// Per-circuit budgets at the gateway (docs/PROTOCOL.md §6.1). The server knows circuits,
// never addresses (P1), so a circuit is what it limits: every request takes a token from
// the circuit's request bucket, a register or login also from its password bucket, and a
// circuit may run one password request at a time. Over budget: 429 MM_ERR_CIRCUIT_RATE.
// A fresh circuit costs a CREATE at the final hop, which is metered per previous hop.
// The circuit id is an opaque key from the final hop; it is never logged or stored.
import { MarshmelloError } from '../../../errors.js'
import { systemClock, type Clock } from '../../common/clock.js'
import { TokenBuckets } from '../../common/limits.js'

export interface CircuitLimitsInit {
  /**
   * requests per second per circuit, and the burst; default 1,000/s, burst 2,000: a ceiling
   * above any client (the bench's closed loop makes ~900/s on one circuit), so that one
   * circuit cannot take the whole server; the final hop also holds 64 requests per circuit at most
   */
  requestRate?: number
  requestBurst?: number
  /** registers and logins per second per circuit, and the burst; default one per 6 s, burst 10 */
  passwordRate?: number
  passwordBurst?: number
  /** circuits remembered (least recently used forgotten first); default 100,000, the final hop's table */
  maxCircuits?: number
}

export const CIRCUIT_LIMIT_DEFAULTS = {
  requestRate: 1_000,
  requestBurst: 2_000,
  passwordRate: 1 / 6,
  passwordBurst: 10,
  maxCircuits: 100_000,
} as const

/** Thrown when a circuit sends requests faster than its request budget. */
const tooManyRequests = () => new MarshmelloError('MM_ERR_CIRCUIT_RATE', 'too many requests on this circuit; slow down')
/** Thrown when a circuit registers or logs in faster than its password budget. */
const tooManyPasswords = () => new MarshmelloError('MM_ERR_CIRCUIT_RATE', 'too many sign-ins or registrations on this circuit; wait a few seconds')
/** Thrown when a circuit starts a register or login while its previous one still runs. */
const onePasswordAtATime = () => new MarshmelloError('MM_ERR_CIRCUIT_RATE', 'one sign-in or registration at a time on a circuit')

export class CircuitLimits {
  private readonly requests: TokenBuckets
  private readonly passwords: TokenBuckets
  /** circuits with a password request running (entries leave when it ends) */
  private readonly passwordRunning = new Set<string>()

  constructor (init: CircuitLimitsInit = {}, clock: Clock = systemClock) {
    const o = { ...CIRCUIT_LIMIT_DEFAULTS, ...init }
    const now = () => clock.now()
    this.requests = new TokenBuckets(o.requestRate, o.requestBurst, o.maxCircuits, now)
    this.passwords = new TokenBuckets(o.passwordRate, o.passwordBurst, o.maxCircuits, now)
  }

  /**
   * Admits one request of `circuit` (a password request when `password`), or throws
   * MM_ERR_CIRCUIT_RATE; the returned function must be called when the request ends.
   */
  admit (circuit: string, password: boolean): () => void {
    if (password && this.passwordRunning.has(circuit)) throw onePasswordAtATime()
    if (!this.requests.take(circuit)) throw tooManyRequests()
    if (!password) return noop
    if (!this.passwords.take(circuit)) throw tooManyPasswords()
    this.passwordRunning.add(circuit)
    return () => { this.passwordRunning.delete(circuit) }
  }
}

const noop = (): void => {}
