// Bounded password work for the auth service (docs/PROTOCOL.md §6.1): every scrypt (a
// register's hash, a login's check, the dummy check for an unknown name) runs through
// one gate that lets `concurrency` run at once and `maxQueued` wait; beyond that the
// caller gets 503 MM_ERR_PASSWORD_BUSY at once, so a flood of registers or logins costs
// the server a bounded amount of CPU and memory (32 MiB per running scrypt) and never an
// unbounded queue. Leaves out who may enter: that is the gateway's per-circuit budget.
import { MarshmelloError } from '../../../errors.js'

export interface PasswordWorkInit {
  /** scrypt runs at once (each holds 32 MiB and one libuv thread); default 2 */
  concurrency?: number
  /** scrypt runs that may wait for a slot; default 32 (~1.5 s of work at ~96 ms each on 2 slots) */
  maxQueued?: number
}

export interface PasswordWorkStats {
  running: number
  queued: number
  /** runs refused since start because the gate was full */
  refused: number
  /** runs completed since start */
  done: number
}

export const DEFAULT_PASSWORD_CONCURRENCY = 2
export const DEFAULT_PASSWORD_QUEUE = 32

/** Thrown when the gate is full: every slot runs and the queue is full. */
const busy = () => new MarshmelloError('MM_ERR_PASSWORD_BUSY', 'the server is busy checking passwords; try again in a few seconds')

export class PasswordWork {
  private readonly concurrency: number
  private readonly maxQueued: number
  private running = 0
  private refused = 0
  private done = 0
  private readonly waiting: (() => void)[] = []

  constructor (init: PasswordWorkInit = {}) {
    this.concurrency = init.concurrency ?? DEFAULT_PASSWORD_CONCURRENCY
    this.maxQueued = init.maxQueued ?? DEFAULT_PASSWORD_QUEUE
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new MarshmelloError('MM_ERR_CONFIG', 'password work concurrency must be an integer ≥ 1')
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 0) throw new MarshmelloError('MM_ERR_CONFIG', 'password work queue must be an integer ≥ 0')
  }

  /** runs `fn` when a slot is free; throws MM_ERR_PASSWORD_BUSY at once when none is and the queue is full */
  async run<T> (fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) {
        this.refused++
        throw busy()
      }
      // the slot is handed over by the run that ends (running stays counted)
      await new Promise<void>((resolve) => this.waiting.push(resolve))
    } else {
      this.running++
    }
    try {
      return await fn()
    } finally {
      this.done++
      const next = this.waiting.shift()
      if (next) next()
      else this.running--
    }
  }

  get stats (): PasswordWorkStats {
    return { running: this.running, queued: this.waiting.length, refused: this.refused, done: this.done }
  }
}
