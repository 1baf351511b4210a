// The outbox: messages the user typed, kept until the server has stored them. Each
// item gets its client id once, so a retry after a lost answer is stored once (the
// server is idempotent by client id, docs/PROTOCOL.md §6); items go out in order, one
// at a time. A network failure puts the item back at the head and pauses the queue until
// `resume()` (the caller's "reconnected"); a refusal by the server marks it failed, and
// `retry(n)` queues it again. Pure: no timers, no I/O, no imports, so the terminal and
// the browser bundle both drive it. Leaves out persistence (a queue dies with its page
// or process) and how states are shown.

export type OutboxTarget = { room: string } | { to: string }
/** queued: waiting (offline, or behind another); sending: on the wire; sent: stored; failed: refused or given up */
export type OutboxState = 'queued' | 'sending' | 'sent' | 'failed'

export interface OutboxItem<R = unknown> {
  /** 1, 2, 3 … in the order typed: what `retry(n)` takes */
  readonly n: number
  readonly clientId: string
  readonly target: OutboxTarget
  readonly text: string
  state: OutboxState
  /** sends tried so far */
  attempts: number
  /** why it failed (the server's refusal, or "could not reach the network") */
  error?: string
  /** what send resolved with (the stored message) */
  result?: R
}

export interface OutboxInit<R> {
  /** sends one item (its clientId, target and text); resolves once the server stored it */
  send: (item: OutboxItem<R>) => Promise<R>
  /** 'offline' keeps the item queued and pauses; 'refused' fails it (the server said no) */
  classify: (err: unknown) => 'offline' | 'refused'
  newClientId: () => string
  /** told of every state change */
  onChange?: (item: OutboxItem<R>) => void
  /** unsent items (queued, sending, failed) kept at most; default 100 */
  maxItems?: number
  /** network failures of one item before it is failed; default 5 */
  maxAttempts?: number
  /** the text of an error, for `error` (default: its message) */
  describe?: (err: unknown) => string
}

export type AddResult<R> = { ok: true, item: OutboxItem<R> } | { ok: false, reason: 'full' }

export class Outbox<R = unknown> {
  private readonly items: Array<OutboxItem<R>> = []
  private next = 1
  private paused = false
  private running: Promise<void> | null = null
  private closed = false
  private readonly maxItems: number
  private readonly maxAttempts: number

  constructor (private readonly init: OutboxInit<R>) {
    this.maxItems = init.maxItems ?? 100
    this.maxAttempts = init.maxAttempts ?? 5
  }

  /** queues a message and starts sending unless paused; refuses when maxItems are unsent */
  add (target: OutboxTarget, text: string): AddResult<R> {
    if (this.items.length >= this.maxItems) return { ok: false, reason: 'full' }
    const item: OutboxItem<R> = { n: this.next++, clientId: this.init.newClientId(), target, text, state: 'queued', attempts: 0 }
    this.items.push(item)
    this.changed(item)
    this.kick()
    return { ok: true, item }
  }

  /** the network is down: keep what waits (add() queues without trying) until resume() */
  pause (): void {
    this.paused = true
  }

  /** the network is back: send what waits */
  resume (): void {
    this.paused = false
    this.kick()
  }

  /** queues a failed item again (same client id); false when there is no failed item n */
  retry (n: number): boolean {
    const item = this.items.find((i) => i.n === n)
    if (!item || item.state !== 'failed') return false
    item.state = 'queued'
    item.attempts = 0
    delete item.error
    this.changed(item)
    this.paused = false
    this.kick()
    return true
  }

  /** drops a failed item; false when there is no failed item n */
  discard (n: number): boolean {
    const at = this.items.findIndex((i) => i.n === n && i.state === 'failed')
    if (at < 0) return false
    this.items.splice(at, 1)
    return true
  }

  /** items not yet stored, oldest first */
  pending (): ReadonlyArray<Readonly<OutboxItem<R>>> { return this.items.slice() }

  get isPaused (): boolean { return this.paused }

  /** resolves when nothing is being sent (the queue is empty, paused or only failed items remain) */
  async idle (): Promise<void> {
    while (this.running) await this.running
  }

  /** stops sending; returns what was not stored */
  close (): ReadonlyArray<Readonly<OutboxItem<R>>> {
    this.closed = true
    return this.pending()
  }

  private kick (): void {
    if (this.running || this.paused || this.closed) return
    this.running = this.pump().finally(() => { this.running = null })
  }

  private async pump (): Promise<void> {
    for (;;) {
      if (this.paused || this.closed) return
      const item = this.items.find((i) => i.state === 'queued')
      if (!item) return
      item.state = 'sending'
      item.attempts++
      this.changed(item)
      try {
        item.result = await this.init.send(item)
      } catch (err) {
        if (this.init.classify(err) === 'offline' && item.attempts < this.maxAttempts) {
          item.state = 'queued'
          this.paused = true
          this.changed(item)
          return
        }
        item.state = 'failed'
        item.error = this.init.describe ? this.init.describe(err) : (err as Error)?.message ?? String(err)
        this.changed(item)
        continue
      }
      item.state = 'sent'
      this.items.splice(this.items.indexOf(item), 1)
      this.changed(item)
    }
  }

  private changed (item: OutboxItem<R>): void {
    try { this.init.onChange?.(item) } catch { /* a display error must not stop the queue */ }
  }
}
