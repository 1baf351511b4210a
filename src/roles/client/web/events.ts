// A bounded in-memory feed of what the page should hear about (new room messages,
// DMs, circuit changes, going offline and back, queued sends, the joined rooms), numbered so the page long-polls with
// `after=N`. Oldest events fall off past `max`; a page that fell behind is told
// to reload (`reset`). Nothing here is persisted. The page imports the types.
import type { HopView, MessageView, OutboxView } from './wire.js'

export type WebEvent =
  | { type: 'room', room: string, message: MessageView }
  | { type: 'dm', peer: string, message: MessageView }
  | { type: 'circuit', hops: HopView[] }
  | { type: 'status', ok: boolean, message: string }
  | { type: 'outbox', item: OutboxView }
  | { type: 'rooms', rooms: string[] }

export type Numbered = WebEvent & { seq: number }

/** the answer to GET /api/events */
export interface EventPage { events: Numbered[], last: number, reset: boolean }

export class EventFeed {
  private events: Numbered[] = []
  private seq = 0
  private waiters = new Set<() => void>()

  constructor (private readonly max = 500) {}

  get last (): number { return this.seq }

  push (e: WebEvent): void {
    this.events.push({ ...e, seq: ++this.seq })
    if (this.events.length > this.max) this.events.splice(0, this.events.length - this.max)
    for (const w of [...this.waiters]) w()
  }

  /** events after `after`; waits up to `waitMs` for one when there are none */
  async since (after: number, waitMs: number, signal?: AbortSignal): Promise<EventPage> {
    const page = () => {
      const oldest = this.events[0]?.seq ?? this.seq + 1
      const reset = after > this.seq || (after < oldest - 1 && this.seq > 0 && after !== 0)
      return { events: reset ? [] : this.events.filter((e) => e.seq > after), last: this.seq, reset }
    }
    const first = page()
    if (first.events.length || first.reset || waitMs <= 0) return first
    await new Promise<void>((resolve) => {
      const done = () => { clearTimeout(timer); this.waiters.delete(done); signal?.removeEventListener('abort', done); resolve() }
      const timer = setTimeout(done, waitMs)
      this.waiters.add(done)
      signal?.addEventListener('abort', done)
    })
    return page()
  }

  /** releases every waiting poll (shutdown) */
  wakeAll (): void {
    for (const w of [...this.waiters]) w()
  }

  clear (): void {
    this.events = []
    this.wakeAll()
  }
}
