// The web session's queue of typed messages not yet stored by the server: sent one
// at a time in the order typed, each under its client id (the server stores a
// repeat once, PROTOCOL §6), retried while the network is down and given up after
// `giveUpMs`; a refusal that retrying cannot fix fails at once. Every change of an
// item goes to `onChange`. A local stand-in for the terminal branch's pure outbox
// module (src/roles/client/outbox.ts): its send/retry loop replaces `pump` there.
import { MarshmelloError } from '../../../errors.js'
import type { Clock } from '../../common/clock.js'
import type { OutboxView, Target } from './wire.js'

/** the most sends waiting at once; one more is refused (MM_ERR_BUSY) */
export const OUTBOX_MAX = 100

export interface OutboxInit {
  /** sends one item; resolves with what the page shows once stored, or undefined when stored without a copy */
  send: (item: OutboxView) => Promise<OutboxView['message']>
  /** an error that retrying may fix (the network, not the request) */
  transient: (err: unknown) => boolean
  onChange: (item: OutboxView) => void
  /** what every attempt's outcome says of the network */
  onNetwork: (ok: boolean, err?: unknown) => void
  clock: Clock
  retryMs?: number
  giveUpMs?: number
}

/** how a message's first try went: stored, queued (the network is down, or older sends are ahead), or refused for good */
export type FirstTry =
  | { outcome: 'sent' | 'queued', item: OutboxView }
  | { outcome: 'refused', item: OutboxView, error: unknown }

export class Outbox {
  private readonly items: OutboxView[] = []
  /** items whose sender waits for the first try: they are announced (onChange) only after it */
  private readonly waiting = new Map<string, (r: FirstTry) => void>()
  private running = false
  private closed = false

  constructor (private readonly o: OutboxInit) {}

  /** the items not yet sent, oldest first */
  list (): OutboxView[] { return this.items.map((i) => ({ ...i })) }

  /**
   * Queues a message and starts sending. With nothing ahead of it, waits for its first
   * try: a refusal for good (a changed key, a bad name) then leaves nothing queued, so
   * the caller can show the error and keep the text. A client id seen before answers
   * with the existing item.
   */
  async submit (target: Target, text: string, clientId: string): Promise<FirstTry> {
    const known = this.items.find((i) => i.clientId === clientId)
    if (known) return { outcome: 'queued', item: { ...known } }
    if (this.items.length >= OUTBOX_MAX) throw new MarshmelloError('MM_ERR_BUSY', `${OUTBOX_MAX} messages are waiting to be sent already; wait until the network is back`)
    const item: OutboxView = { clientId, target, text, state: 'sending', queuedAt: this.o.clock.now(), attempts: 0 }
    const ahead = this.items.some((i) => i.state === 'sending')
    this.items.push(item)
    if (ahead) {
      this.changed(item)
      void this.pump()
      return { outcome: 'queued', item: { ...item } }
    }
    const first = new Promise<FirstTry>((resolve) => this.waiting.set(clientId, resolve))
    void this.pump()
    return await first
  }

  /** puts a failed item back in the queue */
  retry (clientId: string): OutboxView {
    const item = this.items.find((i) => i.clientId === clientId)
    if (!item) throw new MarshmelloError('MM_ERR_NOT_FOUND', 'no such message waiting to be sent')
    if (item.state === 'failed') {
      item.state = 'sending'
      item.queuedAt = this.o.clock.now()
      delete item.error
      this.changed(item)
      void this.pump()
    }
    return { ...item }
  }

  /** drops a failed item (the page's "discard") */
  discard (clientId: string): void {
    const at = this.items.findIndex((i) => i.clientId === clientId && i.state === 'failed')
    if (at >= 0) this.items.splice(at, 1)
  }

  /** stops sending; whoever waits for a first try hears "queued" */
  close (): void {
    this.closed = true
    for (const [id, w] of this.waiting) {
      const item = this.items.find((i) => i.clientId === id)
      if (item) w({ outcome: 'queued', item: { ...item } })
    }
    this.waiting.clear()
  }

  private changed (item: OutboxView): void { this.o.onChange({ ...item }) }

  /** sends the oldest `sending` item until none is left; one loop at a time keeps the order */
  private async pump (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      for (;;) {
        if (this.closed) return
        const item = this.items.find((i) => i.state === 'sending')
        if (!item) return
        item.attempts++
        const waiter = this.waiting.get(item.clientId)
        this.waiting.delete(item.clientId)
        try {
          const message = await this.o.send({ ...item })
          this.o.onNetwork(true)
          this.items.splice(this.items.indexOf(item), 1)
          item.state = 'sent'
          if (message) item.message = message
          this.changed(item)
          waiter?.({ outcome: 'sent', item: { ...item } })
        } catch (err) {
          const transient = this.o.transient(err)
          if (transient) this.o.onNetwork(false, err)
          if (waiter && !transient) {
            this.items.splice(this.items.indexOf(item), 1)
            waiter({ outcome: 'refused', item: { ...item }, error: err })
            continue
          }
          if (waiter) { this.changed(item); waiter({ outcome: 'queued', item: { ...item } }) }
          const late = this.o.clock.now() - item.queuedAt >= (this.o.giveUpMs ?? 10 * 60_000)
          if (!transient || late) {
            item.state = 'failed'
            item.error = transient ? `not sent: the network could not be reached (${(err as Error).message})` : (err as Error).message
            this.changed(item)
            continue
          }
          await this.o.clock.sleep(this.o.retryMs ?? 2000)
        }
      }
    } finally {
      this.running = false
    }
  }
}
