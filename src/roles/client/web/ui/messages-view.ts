// The open conversation's message list. This is the one place message text enters
// the page, and it does so as a text node only; a DM that failed verification shows
// why instead of its text (the server side sends none, session.ts `view`). Keeps the
// list pinned to the bottom while the reader is near it.
import type { MessageView } from '../wire.js'
import { byId, clear, el, time } from './dom.js'
import type { UiState } from './state.js'

/** how close to the bottom (px) still counts as reading the newest messages */
const NEAR_BOTTOM = 80

export class MessagesView {
  private readonly list = byId('messages', HTMLElement)

  constructor (private readonly state: UiState) {}

  render (toBottom: boolean): void {
    const list = this.list
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM
    clear(list)
    const v = this.state.view
    const msgs = this.state.messages()
    if (!msgs.length) list.appendChild(el('li', 'empty', v.kind === 'room' ? `No messages in #${v.name} yet.` : `No messages with ${v.name} yet. Messages are end-to-end encrypted.`))
    for (const m of msgs) list.appendChild(this.node(m))
    if (toBottom || nearBottom) list.scrollTop = list.scrollHeight
  }

  private node (m: MessageView): HTMLLIElement {
    const isDm = m.room === undefined
    const unverified = isDm && !m.verified
    const li = el('li', 'msg' + (m.from === this.state.user ? ' mine' : '') + (isDm ? (unverified ? ' unverified' : ' verified') : ''))
    li.dataset.id = m.id
    const head = el('div', 'head')
    head.appendChild(el('span', 'from', m.from))
    head.appendChild(el('span', 'time', time(m.sentAt)))
    if (isDm) head.appendChild(el('span', 'tag', unverified ? '⚠ not verified' : '✓ verified'))
    li.appendChild(head)
    const body = el('div', 'text')
    body.appendChild(document.createTextNode(unverified ? 'Not shown: ' + (m.warning || 'this message could not be verified') : m.text ?? ''))
    li.appendChild(body)
    if (!unverified && m.warning) li.appendChild(el('div', 'hint', m.warning))
    return li
  }
}
