// The open conversation's message list. This is the one place message text enters
// the page, and it does so as a text node only; a DM that failed verification shows
// why instead of its text (the server side sends none, session.ts `view`). Below the
// stored messages come the sends not stored yet (sending…, or failed with Retry);
// scrolling to the top loads older messages (`loadOlder`). Keeps the list pinned to
// the bottom while the reader is near it, and in place when older ones arrive.
import type { MessageView, OutboxView } from '../wire.js'
import { byId, clear, el, time } from './dom.js'
import { convKey, type UiState } from './state.js'

/** how close to the bottom (px) still counts as reading the newest messages */
const NEAR_BOTTOM = 80
/** how close to the top (px) asks for older messages */
const NEAR_TOP = 40

export interface MessagesDeps {
  /** loads the page before the oldest shown; resolves once it was added to the state */
  loadOlder: () => Promise<void>
  retry: (clientId: string) => void
}

export class MessagesView {
  private readonly list = byId('messages', HTMLElement)
  private loading = false
  private deps: MessagesDeps | null = null

  constructor (private readonly state: UiState) {
    this.list.addEventListener('scroll', () => { if (this.list.scrollTop < NEAR_TOP) void this.older() })
  }

  /** late-bound: the chat view loads and retries */
  bind (deps: MessagesDeps): void { this.deps = deps }

  render (toBottom: boolean): void {
    const list = this.list
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM
    clear(list)
    const v = this.state.view
    const msgs = this.state.messages()
    const pending = this.state.pending()
    if (this.state.older.get(convKey(v))) {
      const li = el('li', 'older')
      const b = el('button', 'small', 'Load older messages')
      b.type = 'button'
      b.addEventListener('click', () => { void this.older() })
      li.appendChild(b)
      list.appendChild(li)
    }
    if (!msgs.length && !pending.length) list.appendChild(el('li', 'empty', v.kind === 'room' ? `No messages in #${v.name} yet.` : `No messages with ${v.name} yet. Messages are end-to-end encrypted.`))
    for (const m of msgs) list.appendChild(this.node(m))
    for (const o of pending) list.appendChild(this.pendingNode(o))
    if (toBottom || nearBottom) list.scrollTop = list.scrollHeight
  }

  /** loads older messages, keeping the reader's place */
  private async older (): Promise<void> {
    if (this.loading || !this.deps || !this.state.older.get(convKey(this.state.view))) return
    this.loading = true
    const list = this.list
    const fromBottom = list.scrollHeight - list.scrollTop
    try {
      await this.deps.loadOlder()
      this.render(false)
      list.scrollTop = list.scrollHeight - fromBottom
    } finally {
      this.loading = false
    }
  }

  private head (from: string, sentAt: number): HTMLDivElement {
    const head = el('div', 'head')
    head.appendChild(el('span', 'from', from))
    const t = time(sentAt)
    const te = el('time', 'time', t.short)
    te.dateTime = t.iso
    te.title = t.full
    head.appendChild(te)
    return head
  }

  private node (m: MessageView): HTMLLIElement {
    const isDm = m.room === undefined
    const unverified = isDm && !m.verified
    const li = el('li', 'msg' + (m.from === this.state.user ? ' mine' : '') + (isDm ? (unverified ? ' unverified' : ' verified') : ''))
    li.dataset.id = m.id
    const head = this.head(m.from, m.sentAt)
    if (isDm) head.appendChild(el('span', 'tag', unverified ? '⚠ not verified' : '✓ verified'))
    li.appendChild(head)
    const body = el('div', 'text')
    body.appendChild(document.createTextNode(unverified ? 'Not shown: ' + (m.warning || 'this message could not be verified') : m.text ?? ''))
    li.appendChild(body)
    if (!unverified && m.warning) li.appendChild(el('div', 'hint', m.warning))
    return li
  }

  private pendingNode (o: OutboxView): HTMLLIElement {
    const failed = o.state === 'failed'
    const li = el('li', 'msg mine ' + (failed ? 'failed' : 'pending'))
    li.dataset.clientId = o.clientId
    li.dataset.state = o.state
    li.appendChild(this.head(this.state.user ?? '', o.queuedAt))
    const body = el('div', 'text')
    body.appendChild(document.createTextNode(o.text))
    li.appendChild(body)
    const st = el('div', 'state')
    st.appendChild(el('span', '', failed ? 'Not sent: ' + (o.error ?? 'failed') : this.state.online ? 'Sending…' : 'Waiting for the network — it will be sent when it is back'))
    if (failed) {
      const b = el('button', 'small retry', 'Retry')
      b.type = 'button'
      b.addEventListener('click', () => this.deps?.retry(o.clientId))
      st.appendChild(b)
    }
    li.appendChild(st)
    return li
  }
}
