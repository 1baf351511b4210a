// A DM peer's key, as the conversation header shows it (the fingerprint, and whether
// it is new, the pinned one, or changed), and the banner that appears when it
// changed: it says what that may mean and offers "Trust new key", which re-pins it
// and reloads the conversation. Fingerprints are shown, never compared, here.
import type { Api, ApiError } from './api.js'
import { byId, clear, el, groups, show } from './dom.js'
import type { Shell } from './shell.js'
import type { UiState } from './state.js'

export interface KeyBannerDeps {
  api: Api
  state: UiState
  shell: Shell
  /** the sidebar shows a changed key too */
  renderLists: () => void
  renderMessages: (toBottom: boolean) => void
}

export class KeyBanner {
  private readonly meta = byId('conv-meta', HTMLElement)
  private readonly banner = byId('key-banner', HTMLElement)
  private readonly title = byId('key-banner-title', HTMLElement)
  private readonly text = byId('key-banner-text', HTMLElement)

  constructor (private readonly d: KeyBannerDeps) {
    byId('trust-btn', HTMLButtonElement).addEventListener('click', () => { void this.trust() })
  }

  /** a fresh view starts with neither fingerprint nor banner */
  reset (): void {
    clear(this.meta)
    show(this.banner, false)
  }

  /** fetches `user`'s key (pinning it on first use) and shows it if their DM is open */
  async load (user: string): Promise<void> {
    const { api, state } = this.d
    try {
      const w = await api.whois(user)
      state.contacts.set(user, { ...state.contacts.get(user), fingerprint: w.fingerprint, status: w.status })
    } catch (e) {
      state.contacts.set(user, { error: (e as Error).message })
    }
    if (state.view.kind === 'dm' && state.view.name === user) this.render(user)
  }

  /** a send refused with MM_ERR_KEY_CHANGED: the server named both keys */
  changed (user: string, e: ApiError): void {
    this.d.state.contacts.set(user, { status: 'changed', fingerprint: e.data.newFingerprint, newFingerprint: e.data.newFingerprint, oldFingerprint: e.data.oldFingerprint })
    this.render(user)
  }

  render (user: string): void {
    const meta = this.meta
    clear(meta)
    const c = this.d.state.contacts.get(user) ?? {}
    if (c.error) { meta.appendChild(el('span', 'error', c.error)); return }
    meta.appendChild(document.createTextNode('key fingerprint '))
    meta.appendChild(el('span', 'fingerprint', groups(c.fingerprint).slice(0, 39) + '…'))
    meta.appendChild(document.createTextNode(c.status === 'new' ? ' · first seen now (trusted on first use)' : c.status === 'same' ? ' · matches the key you pinned' : ''))
    const changed = c.status === 'changed'
    show(this.banner, changed)
    if (changed) {
      this.title.textContent = `⚠ ${user}'s key has changed`
      this.text.textContent = `Someone may be impersonating ${user}, or they set up a new device. Compare the new fingerprint with them over another channel before trusting it: ` +
        groups(c.newFingerprint || c.fingerprint) + (c.oldFingerprint ? ` (was ${groups(c.oldFingerprint)})` : '')
    }
    this.d.renderLists()
  }

  private async trust (): Promise<void> {
    const { api, state, shell } = this.d
    if (state.view.kind !== 'dm') return
    const user = state.view.name
    try {
      const r = await api.trust(user)
      state.contacts.set(user, { fingerprint: r.fingerprint, status: 'same' })
      this.render(user)
      const d = await api.conversation(user)
      state.conv('d:' + user).clear()
      state.addMessages('d:' + user, d.messages)
      this.d.renderMessages(true)
    } catch (e) { shell.notice((e as Error).message, true) }
  }
}
