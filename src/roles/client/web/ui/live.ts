// Live updates: one long-poll loop on GET /api/events (the UI holds each request up
// to 25 s until something happens), applying room messages, DMs, circuit changes,
// queued sends and the one offline / reconnected status to the page, with the unread
// count in the title and (opted in) a notification for what the reader is not
// looking at. A new loop generation (state.pollGen) stops the old one; a feed that
// moved on without us (`reset`) reloads the open view.
import type { Numbered } from '../events.js'
import { ApiError, type Api } from './api.js'
import type { ChatView } from './chat-view.js'
import type { CircuitBar } from './circuit-bar.js'
import { sleep } from './dom.js'
import type { KeyBanner } from './key-banner.js'
import type { MessagesView } from './messages-view.js'
import type { Notifier } from './notify.js'
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
  notifier: Notifier
}

export class Live {
  constructor (private readonly d: LiveDeps) {
    // messages that came while the tab was hidden count as unread until it shows again
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return
      d.state.unread.delete((d.state.view.kind === 'room' ? 'r:' : 'd:') + d.state.view.name)
      d.sidebar.render()
      d.shell.title()
    })
  }

  /** a new message in conversation `key`: unread unless the reader is looking at it */
  private arrived (key: string, open: boolean, from: string, where: string): void {
    const { state, shell, notifier } = this.d
    if (from === state.user) return
    if (!open || document.hidden) {
      state.bumpUnread(key)
      notifier.notify(where, key)
    }
    shell.title()
  }

  handle (e: Numbered): void {
    const { state, shell, sidebar, messages, keys, circuit } = this.d
    if (e.type === 'room') {
      const key = 'r:' + e.room
      if (!state.addMessages(key, [e.message])) return
      const open = state.view.kind === 'room' && state.view.name === e.room
      if (open) messages.render(false)
      this.arrived(key, open, e.message.from, `${e.message.from} in #${e.room}`)
      sidebar.render()
      sidebar.noteRoomActivity(e.room)
    } else if (e.type === 'dm') {
      const key = 'd:' + e.peer
      if (!state.addMessages(key, [e.message])) return
      if (state.addDmPeer(e.peer)) void keys.load(e.peer)
      const open = state.view.kind === 'dm' && state.view.name === e.peer
      if (open) messages.render(false)
      this.arrived(key, open, e.message.from, `direct message from ${e.message.from}`)
      sidebar.render()
    } else if (e.type === 'circuit') {
      circuit.draw(e.hops)
    } else if (e.type === 'status') {
      state.online = e.ok
      shell.notice(e.ok ? 'Reconnected.' : 'Offline — reconnecting. Messages you send now are queued and sent when the network is back.', !e.ok, e.ok)
      messages.render(false)
    } else if (e.type === 'outbox') {
      if (state.applyOutbox(e.item)) messages.render(false)
    } else if (e.type === 'rooms') {
      state.rooms = e.rooms
      sidebar.render()
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
