// The login / sign-up card: two tabs over one form (WAI-ARIA tabs: the selected one
// marked, arrow keys move between them), the username checked against the name rules
// (src/names.ts) and, at sign-up, the password against its rule and typed twice,
// before anything is sent; the password is never kept. And the header's log-out
// button, which brings the card back. What happens after a successful login (the chat
// screen) is the caller's `enterChat`.
import { USERNAME_HTML_PATTERN, USERNAME_MAX, USERNAME_RULE, toUsername } from '../../../../names.js'
import type { Api } from './api.js'
import { byId, show } from './dom.js'
import { PASSWORD_MIN, PASSWORD_RULE } from './limits.js'
import type { Shell } from './shell.js'
import type { UiState } from './state.js'

export type AuthMode = 'login' | 'signup'

export interface LoginDeps { api: Api, state: UiState, shell: Shell, enterChat: () => Promise<void> }

const sentence = (rule: string) => rule[0].toUpperCase() + rule.slice(1) + '.'

export class LoginView {
  private mode: AuthMode = 'login'
  private readonly tabLogin = byId('tab-login', HTMLButtonElement)
  private readonly tabSignup = byId('tab-signup', HTMLButtonElement)
  private readonly form = byId('auth-form', HTMLFormElement)
  private readonly user = byId('auth-user', HTMLInputElement)
  private readonly pass = byId('auth-pass', HTMLInputElement)
  private readonly submit = byId('auth-submit', HTMLButtonElement)
  private readonly error = byId('auth-error', HTMLElement)
  private readonly pass2 = byId('auth-pass2', HTMLInputElement)
  private readonly pass2Label = byId('auth-pass2-label', HTMLElement)
  private readonly rule = byId('auth-pass-rule', HTMLElement)
  private readonly panel = byId('auth-panel', HTMLElement)

  constructor (private readonly d: LoginDeps) {
    this.user.pattern = USERNAME_HTML_PATTERN
    this.user.maxLength = USERNAME_MAX
    this.tabLogin.addEventListener('click', () => this.setMode('login'))
    this.tabSignup.addEventListener('click', () => this.setMode('signup'))
    for (const tab of [this.tabLogin, this.tabSignup]) {
      tab.addEventListener('keydown', (ev) => {
        if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(ev.key)) return
        ev.preventDefault()
        const next: AuthMode = ev.key === 'Home' ? 'login' : ev.key === 'End' ? 'signup' : this.mode === 'login' ? 'signup' : 'login'
        this.setMode(next)
        const tab = next === 'login' ? this.tabLogin : this.tabSignup
        tab.focus()
      })
    }
    this.rule.textContent = PASSWORD_RULE
    this.form.addEventListener('submit', (ev) => { ev.preventDefault(); void this.send() })
    byId('nav-logout', HTMLButtonElement).addEventListener('click', () => { void this.logout() })
  }

  setMode (mode: AuthMode): void {
    this.mode = mode
    const signup = mode === 'signup'
    for (const [tab, on] of [[this.tabLogin, !signup], [this.tabSignup, signup]] as const) {
      tab.classList.toggle('active', on)
      tab.setAttribute('aria-selected', String(on))
      tab.tabIndex = on ? 0 : -1
    }
    this.panel.setAttribute('aria-labelledby', signup ? 'tab-signup' : 'tab-login')
    this.submit.textContent = signup ? 'Create account' : 'Log in'
    this.pass.autocomplete = signup ? 'new-password' : 'current-password'
    show(this.pass2Label, signup)
    this.pass2.required = signup
    this.pass2.value = ''
    show(this.rule, signup)
    show(this.error, false)
  }

  /** the username field: where the card's focus goes when it opens */
  focus (): void { this.user.focus() }

  private fail (message: string): void {
    this.error.textContent = message
    show(this.error, true)
  }

  private async send (): Promise<void> {
    const username = this.user.value.trim()
    const password = this.pass.value
    if (toUsername(username) === null) return this.fail(sentence(USERNAME_RULE))
    if (this.mode === 'signup') {
      if ([...password].length < PASSWORD_MIN) return this.fail(PASSWORD_RULE)
      if (this.pass2.value !== password) return this.fail('The two passwords differ. Type the same password twice.')
    }
    const label = this.submit.textContent
    this.submit.disabled = true
    this.submit.textContent = this.mode === 'login' ? 'Logging in…' : 'Creating account…'
    try {
      const s = this.mode === 'login' ? await this.d.api.login(username, password) : await this.d.api.signup(username, password)
      this.pass.value = ''
      this.pass2.value = ''
      show(this.error, false)
      this.d.state.apply(s)
      await this.d.enterChat()
    } catch (e) {
      this.fail((e as Error).message)
    } finally {
      this.submit.disabled = false
      this.submit.textContent = label
    }
  }

  private async logout (): Promise<void> {
    const { api, state, shell } = this.d
    state.pollGen++
    try { await api.logout() } catch {}
    state.signedOut()
    this.setMode('login')
    shell.screen('login')
    this.focus()
  }
}
