// The outbox: messages the user typed, kept until the server has stored them. Each
// item gets its client id once, so a retry after a lost answer is stored once (the
// server is idempotent by client id, docs/PROTOCOL.md §6); items go out in order, one
// at a time. A network failure puts the item back at the head and pauses the queue until
// `resume()` (the caller's "reconnected"); a refusal by the server marks it failed, and
// `retry(n)` queues it again. The one outbox of both clients (the terminal chat and the
// web UI's session). Pure: no timers, no I/O, no imports. What is unsent can be taken
// out (`snapshot`) and put back (`restore`, same client ids), which is how the profile
// keeps it across a restart (profile/outbox-file.ts, sealed at rest); how states are
// shown is the caller's.

export type OutboxTarget = { room: string } | { to: string }
/** queued: waiting (offline, or behind another); sending: on the wire; sent: stored; failed: refused or given up */
export type OutboxState = 'queued' | 'sending' | 'sent' | 'failed'

export interface OutboxItem<R = unknown> {
  /** 1, 2, 3 … in the order typed: what `retry(n)` takes */
  readonly n: number
  readonly clientId: string
  readonly target: OutboxTarget
  readonly text: string
  /** when it was typed (ms since epoch) */
  readonly queuedAt: number
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
  /**
   * …and only once it waited this long (ms since it was typed); default 10 minutes. While
   * the network comes back, requests succeed and fail by turns and each success resumes
   * the queue: a count alone would fail messages during a recovery.
   */
  giveUpMs?: number
  /** the text of an error, for `error` (default: its message) */
  describe?: (err: unknown) => string
  /** time for `queuedAt`; default Date.now */
  now?: () => number
}

/** `known`: the client id was queued already, and this is that item */
export type AddResult<R> = { ok: true, item: OutboxItem<R>, known?: boolean } | { ok: false, reason: 'full' }

/** an unsent item as it is kept between runs: what `snapshot` gives and `restore` takes */
export interface SavedItem {
  clientId: string
  target: OutboxTarget
  text: string
  queuedAt: number
  /** failed ones come back failed (they wait for /retry), the others queued */
  state: 'queued' | 'failed'
  error?: string
}

/** how an item's first send went: stored; queued again (offline); failed (refused, or too many tries) */
export type FirstOutcome = 'sent' | 'queued' | 'failed'

export class Outbox<R = unknown> {
  private readonly items: Array<OutboxItem<R>> = []
  private next = 1
  private paused = false
  private running: Promise<void> | null = null
  private closed = false
  private readonly maxItems: number
  private readonly maxAttempts: number
  /** items whose first attempt someone waits for (firstOutcome) */
  private readonly firstWaiters = new Map<number, (o: FirstOutcome) => void>()

  constructor (private readonly init: OutboxInit<R>) {
    this.maxItems = init.maxItems ?? 100
    this.maxAttempts = init.maxAttempts ?? 5
  }

  /**
   * Queues a message and starts sending unless paused; refuses when maxItems are unsent.
   * `clientId` (the web page makes its own) names the item: one already queued answers
   * with that item (`known`), so a resubmitted form is one message.
   */
  add (target: OutboxTarget, text: string, opts: { clientId?: string } = {}): AddResult<R> {
    const known = opts.clientId === undefined ? undefined : this.find(opts.clientId)
    if (known) return { ok: true, item: known, known: true }
    if (this.items.length >= this.maxItems) return { ok: false, reason: 'full' }
    const item: OutboxItem<R> = { n: this.next++, clientId: opts.clientId ?? this.init.newClientId(), target, text, queuedAt: (this.init.now ?? Date.now)(), state: 'queued', attempts: 0 }
    this.items.push(item)
    this.changed(item)
    this.kick()
    return { ok: true, item }
  }

  /**
   * Puts back what an earlier run left unsent, under the same client ids (so the server
   * stores each once even if the earlier run's send got through unheard); ids queued
   * already and items past maxItems are skipped. Returns the items added.
   */
  restore (saved: ReadonlyArray<SavedItem>): Array<OutboxItem<R>> {
    const added: Array<OutboxItem<R>> = []
    for (const s of saved) {
      if (this.items.length >= this.maxItems) break
      if (this.find(s.clientId)) continue
      const item: OutboxItem<R> = { n: this.next++, clientId: s.clientId, target: s.target, text: s.text, queuedAt: s.queuedAt, state: s.state, attempts: 0 }
      if (s.state === 'failed' && s.error !== undefined) item.error = s.error
      this.items.push(item)
      added.push(item)
      this.changed(item)
    }
    this.kick()
    return added
  }

  /** what is unsent, oldest first, to keep until the next run (one being sent counts as queued) */
  snapshot (): SavedItem[] {
    return this.items.map((i) => {
      const s: SavedItem = { clientId: i.clientId, target: i.target, text: i.text, queuedAt: i.queuedAt, state: i.state === 'failed' ? 'failed' : 'queued' }
      if (i.state === 'failed' && i.error !== undefined) s.error = i.error
      return s
    })
  }

  find (clientId: string): OutboxItem<R> | undefined { return this.items.find((i) => i.clientId === clientId) }

  /**
   * Resolves with how item n's next attempt ends: 'sent', 'queued' (offline: it waits)
   * or 'failed'; 'queued' at once when the queue is paused or closed, or n is not waiting.
   */
  firstOutcome (n: number): Promise<FirstOutcome> {
    const item = this.items.find((i) => i.n === n)
    if (!item || this.closed || (this.paused && item.state === 'queued')) return Promise.resolve(item?.state === 'failed' ? 'failed' : 'queued')
    return new Promise((resolve) => {
      const earlier = this.firstWaiters.get(n)
      this.firstWaiters.set(n, (o) => { earlier?.(o); resolve(o) })
    })
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
    for (const w of this.firstWaiters.values()) w('queued')
    this.firstWaiters.clear()
    return this.pending()
  }

  private settle (item: OutboxItem<R>, o: FirstOutcome): void {
    const w = this.firstWaiters.get(item.n)
    if (!w) return
    this.firstWaiters.delete(item.n)
    w(o)
  }

  private kick (): void {
    if (this.running || this.paused || this.closed) return
    // an item added while the loop was finishing (after its last look) starts the next loop
    this.running = this.pump().finally(() => {
      this.running = null
      if (this.items.some((i) => i.state === 'queued')) this.kick()
    })
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
        const young = (this.init.now ?? Date.now)() - item.queuedAt < (this.init.giveUpMs ?? 10 * 60_000)
        if (this.init.classify(err) === 'offline' && (item.attempts < this.maxAttempts || young)) {
          item.state = 'queued'
          this.paused = true
          this.changed(item)
          this.settle(item, 'queued')
          return
        }
        item.state = 'failed'
        item.error = this.init.describe ? this.init.describe(err) : (err as Error)?.message ?? String(err)
        this.changed(item)
        this.settle(item, 'failed')
        continue
      }
      item.state = 'sent'
      this.items.splice(this.items.indexOf(item), 1)
      this.changed(item)
      this.settle(item, 'sent')
    }
  }

  private changed (item: OutboxItem<R>): void {
    try { this.init.onChange?.(item) } catch { /* a display error must not stop the queue */ }
  }
}
