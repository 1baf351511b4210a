// What the page remembers between renders: who is signed in, the open view (a room
// or a DM), the joined rooms and DM peers, unread counts, contacts' keys, and a
// bounded cache of each conversation's messages keyed by id. Views read and change
// it and then re-render; nothing here touches the DOM or the network.
import type { KeyStatus, MessageView, SessionView } from '../wire.js'

export type View = { kind: 'room' | 'dm', name: string }

/** what the page knows of a DM peer's key; `error` when it could not be fetched */
export interface Contact {
  fingerprint?: string
  status?: KeyStatus
  oldFingerprint?: string
  newFingerprint?: string
  error?: string
}

/** messages kept per conversation; the oldest fall off */
const KEEP = 400

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
  }

  conv (key: string): Map<string, MessageView> {
    let c = this.convs.get(key)
    if (!c) { c = new Map(); this.convs.set(key, c) }
    return c
  }

  /** true when at least one message was new */
  addMessages (key: string, list: MessageView[]): boolean {
    const c = this.conv(key)
    let added = false
    for (const m of list) if (!c.has(m.id)) { c.set(m.id, m); added = true }
    if (c.size > KEEP) for (const k of [...c.keys()].slice(0, c.size - KEEP)) c.delete(k)
    return added
  }

  /** the open conversation's messages, oldest first */
  messages (): MessageView[] {
    return [...this.conv(convKey(this.view)).values()].sort((a, b) => a.sentAt - b.sentAt || (a.id < b.id ? -1 : 1))
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
    this.unread.clear()
    this.contacts.clear()
  }
}

export const convKey = (v: View): string => (v.kind === 'room' ? 'r:' : 'd:') + v.name
