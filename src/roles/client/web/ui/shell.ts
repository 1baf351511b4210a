// The page's frame: which screen shows (login, network settings or chat), the header
// (who is signed in, the log-out button), the page title with the unread count, the
// sidebar as a panel on narrow screens, and the one notice line for errors and news
// (`good` news hides itself after a while). Every view reaches the frame through
// this; none shows a screen itself.
import { byId, show } from './dom.js'
import type { UiState } from './state.js'

export type ScreenName = 'login' | 'network' | 'chat'
const SCREENS: ScreenName[] = ['login', 'network', 'chat']
const TITLE = 'Marshmello'
/** how long a good notice ("reconnected") stays */
const GOOD_MS = 6000

export class Shell {
  private readonly noticeEl = byId('notice', HTMLElement)
  private readonly logout = byId('nav-logout', HTMLButtonElement)
  private readonly who = byId('who', HTMLElement)
  private readonly chat = byId('screen-chat', HTMLElement)
  private readonly sideToggle = byId('nav-rooms', HTMLButtonElement)
  private noticeTimer: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly state: UiState) {
    this.sideToggle.addEventListener('click', () => this.toggleSide(!this.chat.classList.contains('show-side')))
    document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.closeSide() })
  }

  screen (name: ScreenName): void {
    for (const s of SCREENS) show(byId(`screen-${s}`, HTMLElement), s === name)
    this.showLogout()
    this.who.textContent = this.state.user ? `signed in as ${this.state.user}` : ''
    this.closeSide()
    this.title()
  }

  showLogout (): void { show(this.logout, !!this.state.user) }

  /** "(3) Marshmello" while 3 messages are unread */
  title (): void {
    const n = this.state.user ? this.state.totalUnread() : 0
    document.title = n ? `(${n}) ${TITLE}` : TITLE
  }

  private toggleSide (on: boolean): void {
    this.chat.classList.toggle('show-side', on)
    this.sideToggle.setAttribute('aria-expanded', String(on))
    this.sideToggle.textContent = on ? 'Close' : 'Rooms'
    if (on) byId('sidebar', HTMLElement).querySelector('button')?.focus()
  }

  /** on a narrow screen, hides the sidebar panel again */
  closeSide (): void {
    if (this.chat.classList.contains('show-side')) this.toggleSide(false)
  }

  /** one line at the top; empty text hides it; `bad` marks it as an error, `good` as news that goes away */
  notice (text: string, bad = false, good = false): void {
    clearTimeout(this.noticeTimer)
    this.noticeEl.textContent = text
    this.noticeEl.classList.toggle('bad', bad)
    this.noticeEl.classList.toggle('good', good && !bad)
    show(this.noticeEl, !!text)
    if (good && text) this.noticeTimer = setTimeout(() => { if (this.noticeEl.textContent === text) this.notice('') }, GOOD_MS)
  }
}
