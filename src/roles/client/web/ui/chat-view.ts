// The chat screen's conversation: opening a room or a DM (its title, composer hint,
// cached messages, then the latest ones from the UI, and for a DM the peer's key),
// older pages on request, and the composer: a multi-line box (Enter sends, Shift+Enter
// a new line) that refuses a text over the one message limit before sending and keeps
// it. A send the UI queues while the network is down shows as pending; a DM refused
// because the peer's key changed raises the key banner instead of an error line.
import { ApiError, type Api } from './api.js'
import { byId } from './dom.js'
import type { KeyBanner } from './key-banner.js'
import { MESSAGE_MAX_CHARS, messageLength, messageTooLong } from './limits.js'
import type { MessagesView } from './messages-view.js'
import type { Shell } from './shell.js'
import type { Sidebar } from './sidebar.js'
import { convKey, type UiState, type View } from './state.js'

export interface ChatDeps {
  api: Api
  state: UiState
  shell: Shell
  sidebar: Sidebar
  messages: MessagesView
  keys: KeyBanner
}

/** the composer grows up to this many lines, then scrolls */
const MAX_ROWS = 6
const HINT = 'Enter sends · Shift+Enter for a new line'

/** a fresh client message id (16 base64url characters), so a resend is stored once */
function newClientId (): string {
  const b = crypto.getRandomValues(new Uint8Array(12))
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_')
}

export class ChatView {
  private readonly title = byId('conv-title', HTMLElement)
  private readonly input = byId('send-text', HTMLTextAreaElement)
  private readonly hint = byId('send-hint', HTMLElement)
  /** the notice line shows the limit's warning, to take back once the text fits */
  private limitNotice = false

  constructor (private readonly d: ChatDeps) {
    byId('send-form', HTMLFormElement).addEventListener('submit', (ev) => { ev.preventDefault(); void this.send() })
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing) return
      ev.preventDefault()
      void this.send()
    })
    this.input.addEventListener('input', () => this.fit())
    d.messages.bind({ loadOlder: () => this.loadOlder(), retry: (id) => { void this.retry(id) } })
  }

  /** the composer's height follows its lines; the hint turns into the limit's warning */
  private fit (): void {
    const text = this.input.value
    this.input.rows = Math.min(MAX_ROWS, Math.max(1, text.split('\n').length))
    const over = messageTooLong(text)
    const n = messageLength(text)
    this.hint.textContent = over ?? (n > MESSAGE_MAX_CHARS * 0.9 ? `${n} of ${MESSAGE_MAX_CHARS} characters` : HINT)
    this.hint.classList.toggle('over', over !== null)
    if (!over && this.limitNotice) { this.limitNotice = false; this.d.shell.notice('') }
  }

  focus (): void { this.input.focus() }

  /** the view to open on entering the chat screen: the last one, if it still exists */
  resumeView (): View {
    const { view, dmPeers, rooms } = this.d.state
    if (view.kind === 'dm' && dmPeers.includes(view.name)) return view
    return { kind: 'room', name: rooms.includes(view.name) ? view.name : 'lobby' }
  }

  async select (v: View): Promise<void> {
    const { api, state, shell, sidebar, messages, keys } = this.d
    state.view = v
    state.unread.delete(convKey(v))
    shell.closeSide()
    sidebar.render()
    shell.title()
    this.title.textContent = v.kind === 'room' ? '#' + v.name : v.name
    this.input.placeholder = v.kind === 'room' ? 'Message #' + v.name : 'Encrypted message to ' + v.name
    keys.reset()
    messages.render(true)
    this.focus()
    try {
      if (v.kind === 'room') {
        const r = await api.roomMessages(v.name)
        state.addMessages(convKey(v), r.messages)
        if (!state.older.has(convKey(v))) state.older.set(convKey(v), r.older)
      } else {
        const [r] = await Promise.all([api.conversation(v.name), keys.load(v.name)])
        state.addMessages(convKey(v), r.messages)
        if (!state.older.has(convKey(v))) state.older.set(convKey(v), r.older)
      }
    } catch (e) {
      shell.notice((e as Error).message, true)
    }
    if (state.view === v) messages.render(true)
  }

  /** the page before the oldest message shown in the open view */
  private async loadOlder (): Promise<void> {
    const { api, state, shell } = this.d
    const v = state.view
    const key = convKey(v)
    const oldest = state.messages()[0]
    if (!oldest) { state.older.set(key, false); return }
    try {
      const r = v.kind === 'room' ? await api.roomMessages(v.name, oldest.id) : await api.conversation(v.name, oldest.id)
      state.addMessages(key, r.messages)
      state.older.set(key, r.older && r.messages.length > 0)
    } catch (e) {
      shell.notice((e as Error).message, true)
    }
  }

  private async send (): Promise<void> {
    const { api, state, shell, sidebar, messages, keys } = this.d
    const input = this.input
    const text = input.value
    if (!text.trim()) return
    const over = messageTooLong(text)
    if (over) { shell.notice(over, true); this.limitNotice = true; this.fit(); return }
    const v = state.view
    const clientId = newClientId()
    // shown at once as "sending…"; the UI's answer (or its outbox events) moves it on
    state.applyOutbox({ clientId, target: v, text, state: 'sending', queuedAt: Date.now(), attempts: 0 })
    input.value = ''
    this.fit()
    messages.render(true)
    try {
      const r = v.kind === 'room' ? await api.sendRoom(v.name, text, clientId) : await api.sendDm(v.name, text, clientId)
      if (r.message) state.applyOutbox({ clientId, target: v, text, state: 'sent', queuedAt: 0, attempts: 1, message: r.message })
      else state.applyOutbox(r.pending)
      if (v.kind === 'dm' && state.addDmPeer(v.name)) sidebar.render()
      if (v.kind === 'room' && r.message) sidebar.noteRoomActivity(v.name)
    } catch (e) {
      state.outbox.delete(clientId)
      // nothing was queued: the text goes back to the composer, unless something new is typed there
      if (!input.value) { input.value = text; this.fit() }
      if (e instanceof ApiError && e.code === 'MM_ERR_KEY_CHANGED' && v.kind === 'dm') keys.changed(v.name, e)
      else shell.notice((e as Error).message, true)
    } finally {
      if (state.isOpen(v)) messages.render(true)
      input.focus()
    }
  }

  private async retry (clientId: string): Promise<void> {
    const { api, state, shell, messages } = this.d
    try {
      state.applyOutbox((await api.retry(clientId)).item)
      messages.render(false)
    } catch (e) { shell.notice((e as Error).message, true) }
  }
}
