// Live updates: one long-poll loop on GET /api/events (the UI holds each request up
// to 25 s until something happens), applying room messages, DMs, circuit changes
// and network status to the page. A new loop generation (state.pollGen) stops the
// old one; a feed that moved on without us (`reset`) reloads the open view.
import type { Numbered } from '../events.js'
import { ApiError, type Api } from './api.js'
import type { ChatView } from './chat-view.js'
import type { CircuitBar } from './circuit-bar.js'
import { sleep } from './dom.js'
import type { KeyBanner } from './key-banner.js'
import type { MessagesView } from './messages-view.js'
import type { Shell } from './shell.js'
import type { Sidebar } from './sidebar.js'
import type { UiState } from './state.js'

/** the pause after a failed poll */
const RETRY_MS = 2000

export interface LiveDeps {
  api: Api
  state: UiState
  shell: Shell
  sidebar: Sidebar
  messages: MessagesView
  keys: KeyBanner
  circuit: CircuitBar
  chat: ChatView
}

export class Live {
  constructor (private readonly d: LiveDeps) {}

  handle (e: Numbered): void {
    const { state, shell, sidebar, messages, keys, circuit } = this.d
    if (e.type === 'room') {
      const key = 'r:' + e.room
      if (!state.addMessages(key, [e.message])) return
      if (state.view.kind === 'room' && state.view.name === e.room) messages.render(false)
      else { state.bumpUnread(key); sidebar.render() }
    } else if (e.type === 'dm') {
      const key = 'd:' + e.peer
      if (!state.addMessages(key, [e.message])) return
      if (state.addDmPeer(e.peer)) void keys.load(e.peer)
      if (state.view.kind === 'dm' && state.view.name === e.peer) messages.render(false)
      else state.bumpUnread(key)
      sidebar.render()
    } else if (e.type === 'circuit') {
      circuit.draw(e.hops)
    } else if (e.type === 'status') {
      shell.notice(e.ok ? '' : e.message, !e.ok)
    }
  }

  /** polls until `gen` is no longer the current generation or the token was refused */
  async poll (gen: number): Promise<void> {
    const { api, state, chat } = this.d
    while (gen === state.pollGen && !state.dead) {
      try {
        const r = await api.events(state.after)
        if (gen !== state.pollGen) return
        if (r.reset) { state.after = r.last; await chat.select(state.view); continue }
        for (const e of r.events) this.handle(e)
        state.after = r.last
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return
        await sleep(RETRY_MS)
      }
    }
  }
}
