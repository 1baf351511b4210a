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
  private readonly safety = byId('safety', HTMLElement)
  private readonly safetyNumber = byId('safety-number', HTMLElement)
  private readonly safetyState = byId('safety-state', HTMLElement)
  private readonly safetyQr = byId('safety-qr', HTMLElement)
  private readonly verifyBtn = byId('verify-btn', HTMLButtonElement)

  constructor (private readonly d: KeyBannerDeps) {
    byId('trust-btn', HTMLButtonElement).addEventListener('click', () => { void this.trust() })
    this.verifyBtn.addEventListener('click', () => { void this.verify() })
  }

  /** a fresh view starts with neither fingerprint nor banner */
  reset (): void {
    clear(this.meta)
    show(this.banner, false)
    show(this.safety, false)
  }

  /** fetches `user`'s key (pinning it on first use) and shows it if their DM is open */
  async load (user: string): Promise<void> {
    const { api, state } = this.d
    try {
      const w = await api.whois(user)
      state.contacts.set(user, { ...state.contacts.get(user), fingerprint: w.fingerprint, status: w.status, safetyNumber: w.safetyNumber, safetyQr: w.safetyQr, verified: w.verified })
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
    show(this.safety, !changed && c.safetyNumber !== undefined)
    this.safetyNumber.textContent = c.safetyNumber ?? ''
    this.safetyState.textContent = c.verified ? '✓ verified' : '· compare it with them (in person or on a call), then mark it verified'
    this.safetyQr.textContent = c.safetyQr ?? ''
    show(this.verifyBtn, !c.verified)
    show(this.banner, changed)
    if (changed) {
      this.title.textContent = `⚠ ${user}'s key has changed`
      this.text.textContent = `Someone may be impersonating ${user}, or they set up a new device. Compare the new fingerprint with them over another channel before trusting it: ` +
        groups(c.newFingerprint || c.fingerprint) + (c.oldFingerprint ? ` (was ${groups(c.oldFingerprint)})` : '')
    }
    this.d.renderLists()
  }

  private async verify (): Promise<void> {
    const { api, state, shell } = this.d
    if (state.view.kind !== 'dm') return
    const user = state.view.name
    try {
      const w = await api.verify(user)
      state.contacts.set(user, { ...state.contacts.get(user), fingerprint: w.fingerprint, status: w.status, safetyNumber: w.safetyNumber, safetyQr: w.safetyQr, verified: w.verified })
      this.render(user)
    } catch (e) { shell.notice((e as Error).message, true) }
  }

  private async trust (): Promise<void> {
    const { api, state, shell } = this.d
    if (state.view.kind !== 'dm') return
    const user = state.view.name
    try {
      await api.trust(user)
      await this.load(user) // the new key's safety number
      const d = await api.conversation(user)
      state.conv('d:' + user).clear()
      state.addMessages('d:' + user, d.messages)
      this.d.renderMessages(true)
    } catch (e) { shell.notice((e as Error).message, true) }
  }
}
