// The page's frame: which screen shows (login, network settings or chat), the header
// (who is signed in, the log-out button) and the one notice line for errors and
// news. Every view reaches the frame through this; none shows a screen itself.
import { byId, show } from './dom.js'
import type { UiState } from './state.js'

export type ScreenName = 'login' | 'network' | 'chat'
const SCREENS: ScreenName[] = ['login', 'network', 'chat']

export class Shell {
  private readonly noticeEl = byId('notice', HTMLElement)
  private readonly logout = byId('nav-logout', HTMLButtonElement)
  private readonly who = byId('who', HTMLElement)

  constructor (private readonly state: UiState) {}

  screen (name: ScreenName): void {
    for (const s of SCREENS) show(byId(`screen-${s}`, HTMLElement), s === name)
    this.showLogout()
    this.who.textContent = this.state.user ? `signed in as ${this.state.user}` : ''
  }

  showLogout (): void { show(this.logout, !!this.state.user) }

  /** one line at the top; empty text hides it; `bad` marks it as an error */
  notice (text: string, bad = false): void {
    this.noticeEl.textContent = text
    this.noticeEl.classList.toggle('bad', bad)
    show(this.noticeEl, !!text)
  }
}
