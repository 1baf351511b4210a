// A bounded cache of one conversation's messages (a room, or all DMs) keyed by id,
// as the web session keeps it from its long-polls, and the page's view of a message:
// a DM that failed verification carries no text. Pages are read newest first from the
// cache, `before` an id for older history; what is older than the cache the session
// reads from the server. Leaves out reading from the network.
import type { ChatMessage } from '../chat-client.js'
import type { MessageView } from './wire.js'

/** messages kept per timeline; the oldest fall off */
export const KEEP = 1000
/** messages in one page the local API answers with */
export const PAGE = 50

export class Timeline {
  readonly byId = new Map<string, ChatMessage>()
  /** the server holds older messages than the oldest cached (the first read said so, or the cache dropped some) */
  olderOnServer = false

  add (m: ChatMessage): boolean {
    if (this.byId.has(m.id)) return false
    this.byId.set(m.id, m)
    if (this.byId.size > KEEP) {
      const drop = this.sorted().slice(0, this.byId.size - KEEP)
      for (const d of drop) this.byId.delete(d.id)
      this.olderOnServer = true
    }
    return true
  }

  private sorted (filter?: (m: ChatMessage) => boolean): ChatMessage[] {
    const all = [...this.byId.values()].filter(filter ?? (() => true))
    return all.sort((a, b) => a.sentAt - b.sentAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** every cached message (with `filter`), oldest first */
  list (filter?: (m: ChatMessage) => boolean): ChatMessage[] { return this.sorted(filter) }

  /** the newest `limit` messages, or those just before message `before`; `older` says more are cached */
  page (o: { before?: string, limit?: number, filter?: (m: ChatMessage) => boolean } = {}): { messages: ChatMessage[], older: boolean } {
    let all = this.sorted(o.filter)
    if (o.before !== undefined) {
      const at = all.findIndex((m) => m.id === o.before)
      all = at < 0 ? [] : all.slice(0, at)
    }
    const limit = o.limit ?? PAGE
    return { messages: all.slice(-limit), older: all.length > limit }
  }
}

/** what the page sees of a message: DMs that failed verification carry no text */
export function view (m: ChatMessage): MessageView {
  const out: MessageView = { id: m.id, from: m.from, sentAt: m.sentAt, text: null }
  if (m.room !== undefined) { out.room = m.room; out.text = m.text; return out }
  out.to = m.to
  out.verified = m.verified === true
  out.text = m.verified === true ? m.text : null
  if (m.warning) out.warning = m.warning
  if (m.safetyNumber) out.safetyNumber = m.safetyNumber
  if (m.contactVerified !== undefined) out.contactVerified = m.contactVerified
  return out
}

export const dmPeer = (me: string, m: ChatMessage): string => (m.from === me ? m.to ?? m.from : m.from)
