// Failed-login throttling per name that never locks the owner out (docs/PROTOCOL.md
// §6.1): each name, known or not, keeps a failure score that decays with time; while
// the score is high, every login for that name waits a delay (doubling per failure, with
// a cap) BEFORE its password is checked, and a correct password after the wait always
// signs in. So guessing slows down per name while the owner is only delayed, never
// refused (the lockout this replaces answered 429 to the right password). Time comes
// from the injected Clock; the table of names and the number of waiting logins are bounded.
import { LRUCache } from 'lru-cache'
import { MarshmelloError } from '../../../errors.js'
import { systemClock, type Clock } from '../../common/clock.js'

export interface LoginThrottleInit {
  /** failures a name may have before its logins wait; default 5 */
  freeFailures?: number
  /** one failure is forgotten per this many ms; default 60 s */
  decayMs?: number
  /** the first delay; each further failure doubles it; default 250 ms */
  baseDelayMs?: number
  /** the longest delay; default 8 s (what the owner waits at worst during an attack) */
  maxDelayMs?: number
  /** names remembered (least recently used forgotten first); default 50,000 */
  maxNames?: number
  /** logins waiting out a delay at once, over every name; default 4,096 */
  maxHeld?: number
}

export const LOGIN_THROTTLE_DEFAULTS = {
  freeFailures: 5,
  decayMs: 60_000,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxNames: 50_000,
  maxHeld: 4_096,
} as const

/** the score never grows past this: enough to reach any delay cap, small enough for 2 ** n */
const MAX_SCORE = 64

/** Thrown when as many logins as allowed already wait out a delay. */
const tooManyHeld = () => new MarshmelloError('MM_ERR_PASSWORD_BUSY', 'the server is busy checking passwords; try again in a few seconds')

interface Entry { score: number, at: number }

export class LoginThrottle {
  private readonly o: Required<LoginThrottleInit>
  private readonly names: LRUCache<string, Entry>
  private held = 0

  constructor (init: LoginThrottleInit = {}, private readonly clock: Clock = systemClock) {
    this.o = { ...LOGIN_THROTTLE_DEFAULTS, ...init }
    this.names = new LRUCache({ max: this.o.maxNames })
  }

  /** the name's failure score now (decayed) */
  score (name: string): number {
    const e = this.names.get(name)
    if (!e) return 0
    return Math.max(0, e.score - (this.clock.now() - e.at) / this.o.decayMs)
  }

  /** how long a login for `name` waits now before its password is checked */
  delayFor (name: string): number {
    const over = Math.floor(this.score(name)) - this.o.freeFailures
    if (over < 0) return 0
    return Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** over)
  }

  /** waits out the name's delay (nothing when it has none); MM_ERR_PASSWORD_BUSY when too many already wait */
  async wait (name: string): Promise<void> {
    const ms = this.delayFor(name)
    if (ms === 0) return
    if (this.held >= this.o.maxHeld) throw tooManyHeld()
    this.held++
    try {
      await this.clock.sleep(ms)
    } finally {
      this.held--
    }
  }

  /** counts one failed login (wrong password or unknown name: the same) */
  failed (name: string): void {
    this.names.set(name, { score: Math.min(MAX_SCORE, this.score(name) + 1), at: this.clock.now() })
  }

  /** logins waiting out a delay right now */
  get waiting (): number { return this.held }
}
