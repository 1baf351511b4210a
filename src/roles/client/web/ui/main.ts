// The web UI's browser entry point (bundled by scripts/build.mjs into build/web/app.js,
// served as /app.js): takes the token from the URL fragment (or the one this tab kept
// across a reload; a link opened in the tab again brings a new one), builds the views
// over the page's fixed markup (page.html) and starts on the screen the session calls
// for, with the focus where typing goes next. Every piece of text from the network enters the page with textContent or
// createTextNode (dom.ts, messages-view.ts), never as HTML; the CSP allows no other.
import { Api } from './api.js'
import { ChatView } from './chat-view.js'
import { CircuitBar } from './circuit-bar.js'
import { KeyBanner } from './key-banner.js'
import { Live } from './live.js'
import { LoginView } from './login-view.js'
import { MessagesView } from './messages-view.js'
import { NetworkView } from './network-view.js'
import { Notifier } from './notify.js'
import { Shell } from './shell.js'
import { Sidebar } from './sidebar.js'
import { UiState } from './state.js'
import { forgetToken, takeToken, watchToken } from './token.js'

const LOST_TOKEN = 'This page has no valid access token. Open the link printed by `marshmello chat --web` in your terminal.'

const state = new UiState()
const shell = new Shell(state)
const api = new Api(takeToken(), lostToken)

function lostToken (): void {
  if (state.dead) return
  state.dead = true
  state.pollGen++
  forgetToken()
  shell.notice(LOST_TOKEN, true)
}

// views reach one another through these late-bound calls, so none imports another's instance
const messages = new MessagesView(state)
const sidebar: Sidebar = new Sidebar({ api, state, shell, select: (v) => chat.select(v) })
const keys = new KeyBanner({ api, state, shell, renderLists: () => sidebar.render(), renderMessages: (b) => messages.render(b) })
const circuit = new CircuitBar(api, shell)
const chat: ChatView = new ChatView({ api, state, shell, sidebar, messages, keys })
const notifier = new Notifier()
const live = new Live({ api, state, shell, sidebar, messages, keys, circuit, chat, notifier })
const login = new LoginView({ api, state, shell, enterChat })
const network = new NetworkView({ api, state, shell, enterChat, setAuthMode: (m) => login.setMode(m) })

async function enterChat (): Promise<void> {
  shell.notice('')
  shell.screen('chat')
  sidebar.render()
  void sidebar.loadRooms()
  await chat.select(chat.resumeView())
  void circuit.refresh()
  void live.poll(++state.pollGen)
}

async function boot (): Promise<void> {
  if (!api.hasToken) { lostToken(); return }
  let s
  try { s = await api.session() } catch (e) { if (!state.dead) shell.notice((e as Error).message, true); return }
  state.apply(s)
  if (s.loggedIn) await enterChat()
  else if (!s.network.configured) await network.open()
  else { shell.screen('login'); login.focus() }
}

// the printed link opened again in this tab (after a restart of `chat --web`): start over with its token
watchToken((token) => {
  api.setToken(token)
  state.dead = false
  state.pollGen++
  state.signedOut()
  shell.notice('')
  void boot()
})

login.setMode('login')
void boot()
