// What the page remembers between renders: who is signed in, the open view (a room
// or a DM), the joined rooms and DM peers, unread counts, contacts' keys, a bounded
// cache of each conversation's messages keyed by id (and whether older ones can be
// loaded), and the sends the UI has not stored yet. Views read and change it and
// then re-render; nothing here touches the DOM or the network.
import type { KeyStatus, MessageView, OutboxView, SessionView, Target } from '../wire.js'

export type View = Target

/** what the page knows of a DM peer's key; `error` when it could not be fetched */
export interface Contact {
  fingerprint?: string
  status?: KeyStatus
  safetyNumber?: string
  safetyQr?: string
  verified?: boolean
  oldFingerprint?: string
  newFingerprint?: string
  error?: string
}

/** messages kept per conversation; the oldest fall off */
const KEEP = 1200

export class UiState {
  user: string | null = null
  view: View = { kind: 'room', name: 'lobby' }
  rooms: string[] = []
  dmPeers: string[] = []
  /** convKey → unread messages */
  readonly unread = new Map<string, number>()
  readonly contacts = new Map<string, Contact>()
  /** convKey → (message id → message) */
  readonly convs = new Map<string, Map<string, MessageView>>()
  /** convKey → the UI has older messages than the oldest shown */
  readonly older = new Map<string, boolean>()
  /** clientId → a send not yet stored (sending, or failed) */
  readonly outbox = new Map<string, OutboxView>()
  /** clientIds stored already: a late "sending" for one of them is stale */
  private readonly sentIds = new Set<string>()
  /** false while the UI cannot reach the network */
  online = true
  /** the last event number the page has seen */
  after = 0
  /** bumped to stop the running long-poll loop */
  pollGen = 0
  /** set once the UI refused the page's token: nothing more can be done */
  dead = false

  apply (s: SessionView): void {
    this.user = s.username
    this.rooms = s.rooms ?? []
    this.dmPeers = s.dmPeers ?? []
    this.after = s.lastEvent ?? 0
    this.online = s.online ?? true
    this.outbox.clear()
    for (const o of s.outbox ?? []) this.outbox.set(o.clientId, o)
  }

  /** applies an outbox change; true when the open view shows it */
  applyOutbox (o: OutboxView): boolean {
    if (o.state === 'sent') {
      this.outbox.delete(o.clientId)
      this.sentIds.add(o.clientId)
      if (this.sentIds.size > 1000) this.sentIds.delete(this.sentIds.values().next().value!)
      if (o.message) this.addMessages(convKey(o.target), [o.message])
    } else if (!this.sentIds.has(o.clientId)) {
      this.outbox.set(o.clientId, o)
    }
    return this.isOpen(o.target)
  }

  /** the open conversation's sends not yet stored, oldest first */
  pending (): OutboxView[] {
    return [...this.outbox.values()].filter((o) => this.isOpen(o.target)).sort((a, b) => a.queuedAt - b.queuedAt)
  }

  /** unread messages over all conversations (the page title shows it) */
  totalUnread (): number {
    let n = 0
    for (const v of this.unread.values()) n += v
    return n
  }

  conv (key: string): Map<string, MessageView> {
    let c = this.convs.get(key)
    if (!c) { c = new Map(); this.convs.set(key, c) }
    return c
  }

  /** true when at least one message was new; past KEEP the oldest fall off */
  addMessages (key: string, list: MessageView[]): boolean {
    const c = this.conv(key)
    let added = false
    for (const m of list) if (!c.has(m.id)) { c.set(m.id, m); added = true }
    if (c.size > KEEP) {
      const sorted = [...c.values()].sort(byTime)
      for (const m of sorted.slice(0, c.size - KEEP)) c.delete(m.id)
      this.older.set(key, true)
    }
    return added
  }

  /** the open conversation's messages, oldest first */
  messages (): MessageView[] {
    return [...this.conv(convKey(this.view)).values()].sort(byTime)
  }

  isOpen (v: View): boolean { return this.view.kind === v.kind && this.view.name === v.name }

  addDmPeer (peer: string): boolean {
    if (this.dmPeers.includes(peer)) return false
    this.dmPeers.unshift(peer)
    return true
  }

  bumpUnread (key: string): void { this.unread.set(key, (this.unread.get(key) ?? 0) + 1) }

  /** forgets what belonged to the signed-in user */
  signedOut (): void {
    this.user = null
    this.convs.clear()
    this.older.clear()
    this.unread.clear()
    this.contacts.clear()
    this.outbox.clear()
  }
}

export const convKey = (v: View): string => (v.kind === 'room' ? 'r:' : 'd:') + v.name

const byTime = (a: MessageView, b: MessageView): number => a.sentAt - b.sentAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
