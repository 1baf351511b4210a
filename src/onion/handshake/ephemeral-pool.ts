// Single-use X25519 keys made ahead of need, so a hop answers CREATE without importing
// a key on its critical path (the import computes the public half: ~45 µs of a ~0.45 ms
// CREATE on the bench machine, four times per circuit build). Bounded (a few keys),
// refilled one key per event-loop turn after the answers of the current turn have left,
// never reused: take() hands each key out once and relayRespond erases its private bytes.
// Keys live in memory only; clear() erases the ones still waiting.
import { randomBytes } from 'node:crypto'
import { x25519Ephemeral, type X25519Ephemeral } from '../crypto/primitives.js'

export class EphemeralPool {
  private readonly ready: X25519Ephemeral[] = []
  private filling = false
  private cleared = false

  constructor (readonly size = 4) {}

  /** a fresh key: a prepared one when there is one, else made now */
  take (): X25519Ephemeral {
    const k = this.ready.pop() ?? x25519Ephemeral(randomBytes(32))
    this.refill()
    return k
  }

  /** how many keys are prepared (tests) */
  get available (): number { return this.ready.length }

  private refill (): void {
    if (this.filling || this.cleared || this.ready.length >= this.size) return
    this.filling = true
    setImmediate(() => {
      this.filling = false
      if (this.cleared || this.ready.length >= this.size) return
      this.ready.push(x25519Ephemeral(randomBytes(32)))
      this.refill()
    }).unref()
  }

  /** erases the prepared keys and stops refilling (shutdown) */
  clear (): void {
    this.cleared = true
    for (const k of this.ready.splice(0)) k.private.fill(0)
  }
}
