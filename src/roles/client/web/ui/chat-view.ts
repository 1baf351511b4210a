// The chat screen's conversation: opening a room or a DM (its title, composer hint,
// cached messages, then the latest ones from the UI, and for a DM the peer's key),
// and the composer that sends to the open conversation. A DM refused because the
// peer's key changed raises the key banner instead of an error line.
import { ApiError, type Api } from './api.js'
import { byId } from './dom.js'
import type { KeyBanner } from './key-banner.js'
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

export class ChatView {
  private readonly title = byId('conv-title', HTMLElement)
  private readonly input = byId('send-text', HTMLInputElement)

  constructor (private readonly d: ChatDeps) {
    byId('send-form', HTMLFormElement).addEventListener('submit', (ev) => { ev.preventDefault(); void this.send() })
  }

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
    sidebar.render()
    this.title.textContent = v.kind === 'room' ? '#' + v.name : v.name
    this.input.placeholder = v.kind === 'room' ? 'Message #' + v.name : 'Encrypted message to ' + v.name
    keys.reset()
    messages.render(true)
    try {
      if (v.kind === 'room') {
        const r = await api.roomMessages(v.name)
        state.addMessages(convKey(v), r.messages)
      } else {
        const [r] = await Promise.all([api.conversation(v.name), keys.load(v.name)])
        state.addMessages(convKey(v), r.messages)
      }
    } catch (e) {
      shell.notice((e as Error).message, true)
    }
    if (state.view === v) messages.render(true)
  }

  private async send (): Promise<void> {
    const { api, state, shell, sidebar, messages, keys } = this.d
    const input = this.input
    const text = input.value
    if (!text.trim()) return
    const v = state.view
    input.disabled = true
    try {
      const r = v.kind === 'room' ? await api.sendRoom(v.name, text) : await api.sendDm(v.name, text)
      input.value = ''
      state.addMessages(convKey(v), [r.message])
      if (v.kind === 'dm' && state.addDmPeer(v.name)) sidebar.render()
      if (state.view === v) messages.render(true)
    } catch (e) {
      if (e instanceof ApiError && e.code === 'MM_ERR_KEY_CHANGED' && v.kind === 'dm') keys.changed(v.name, e)
      else shell.notice((e as Error).message, true)
    } finally {
      input.disabled = false
      input.focus()
    }
  }
}
