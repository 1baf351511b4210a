// The login / sign-up card: two tabs over one form, the username checked against the
// name rules (src/names.ts) before anything is sent, the password never kept; and
// the header's log-out button, which brings the card back. What happens after a
// successful login (the chat screen) is the caller's `enterChat`.
import { USERNAME_HTML_PATTERN, USERNAME_MAX, USERNAME_RULE, toUsername } from '../../../../names.js'
import type { Api } from './api.js'
import { byId, show } from './dom.js'
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

  constructor (private readonly d: LoginDeps) {
    this.user.pattern = USERNAME_HTML_PATTERN
    this.user.maxLength = USERNAME_MAX
    this.tabLogin.addEventListener('click', () => this.setMode('login'))
    this.tabSignup.addEventListener('click', () => this.setMode('signup'))
    this.form.addEventListener('submit', (ev) => { ev.preventDefault(); void this.send() })
    byId('nav-logout', HTMLButtonElement).addEventListener('click', () => { void this.logout() })
  }

  setMode (mode: AuthMode): void {
    this.mode = mode
    this.tabLogin.classList.toggle('active', mode === 'login')
    this.tabSignup.classList.toggle('active', mode === 'signup')
    this.submit.textContent = mode === 'login' ? 'Log in' : 'Create account'
    this.pass.autocomplete = mode === 'login' ? 'current-password' : 'new-password'
    show(this.error, false)
  }

  private fail (message: string): void {
    this.error.textContent = message
    show(this.error, true)
  }

  private async send (): Promise<void> {
    const username = this.user.value.trim()
    const password = this.pass.value
    if (toUsername(username) === null) return this.fail(sentence(USERNAME_RULE))
    const label = this.submit.textContent
    this.submit.disabled = true
    this.submit.textContent = this.mode === 'login' ? 'Logging in…' : 'Creating account…'
    try {
      const s = this.mode === 'login' ? await this.d.api.login(username, password) : await this.d.api.signup(username, password)
      this.pass.value = ''
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
  }
}
