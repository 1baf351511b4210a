// Single-use X25519 keys made ahead of need, so a hop answers CREATE without importing
// a key on its critical path (generating one with its public half: ~80 µs of a ~0.45 ms
// CREATE on the bench machine, four times per circuit build). Bounded (a few keys),
// refilled one key per event-loop turn after the answers of the current turn have left,
// never reused: take() hands each key out once and relayRespond disposes of it.
// Keys live in memory only; clear() disposes of the ones still waiting.
import { x25519Ephemeral, type X25519Ephemeral } from '../crypto/primitives.js'

export class EphemeralPool {
  private readonly ready: X25519Ephemeral[] = []
  private filling = false
  private cleared = false

  constructor (readonly size = 4) {}

  /** a fresh key: a prepared one when there is one, else made now */
  take (): X25519Ephemeral {
    const k = this.ready.pop() ?? x25519Ephemeral()
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
      this.ready.push(x25519Ephemeral())
      this.refill()
    }).unref()
  }

  /** erases the prepared keys and stops refilling (shutdown) */
  clear (): void {
    this.cleared = true
    for (const k of this.ready.splice(0)) k.dispose()
  }
}
