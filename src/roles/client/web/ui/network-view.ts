// The network settings screen: what the UI is connected to (a devnet directory, or a
// bootstrap relay and the directory key), and two forms to change it. A change logs
// the user out on the server side, so the page goes back to the login card.
import type { Api } from './api.js'
import { byId, clear, el, groups, show } from './dom.js'
import type { AuthMode } from './login-view.js'
import type { Shell } from './shell.js'
import type { UiState } from './state.js'
import type { NetworkChange } from '../wire.js'

/** one directory authority key, or several comma-separated (the server's first) */
const HEX64 = /^[0-9a-fA-F]{64}(,[0-9a-fA-F]{64}){0,15}$/
const RELAY_URL = /^https:\/\/[^/]+\/?$/

export interface NetworkDeps {
  api: Api
  state: UiState
  shell: Shell
  enterChat: () => Promise<void>
  setAuthMode: (mode: AuthMode) => void
}

export class NetworkView {
  private readonly current = byId('net-current', HTMLElement)
  private readonly relay = byId('net-relay', HTMLInputElement)
  private readonly key = byId('net-key', HTMLInputElement)
  private readonly devnet = byId('net-devnet', HTMLInputElement)
  private readonly back = byId('net-back', HTMLButtonElement)
  private readonly error = byId('net-error', HTMLElement)

  constructor (private readonly d: NetworkDeps) {
    byId('nav-network', HTMLButtonElement).addEventListener('click', () => { if (!d.state.dead) void this.open() })
    this.back.addEventListener('click', () => { if (d.state.user) void d.enterChat(); else d.shell.screen('login') })
    byId('net-form', HTMLFormElement).addEventListener('submit', (ev) => {
      ev.preventDefault()
      const relay = this.relay.value.trim()
      const directoryKey = this.key.value.replace(/\s+/g, '')
      if (!RELAY_URL.test(relay)) return this.fail('The relay URL must look like https://host:port.')
      if (!HEX64.test(directoryKey)) return this.fail('The directory key must be exactly 64 hex characters (comma-separate several authorities\' keys).')
      void this.change({ relay, directoryKey })
    })
    byId('devnet-form', HTMLFormElement).addEventListener('submit', (ev) => {
      ev.preventDefault()
      void this.change({ devnet: this.devnet.value.trim() })
    })
  }

  private fail (message: string): void {
    this.error.textContent = message
    show(this.error, true)
  }

  async open (): Promise<void> {
    this.d.shell.screen('network')
    const dl = this.current
    clear(dl)
    let n
    try { n = await this.d.api.network() } catch { return }
    const row = (k: string, v: string, mono = false) => { dl.appendChild(el('dt', '', k)); dl.appendChild(el('dd', mono ? 'mono' : '', v)) }
    if (!n.configured) row('Current', n.error || 'no network configured yet')
    else {
      if (n.devnetDir) row('Devnet', n.devnetDir)
      row('Bootstrap relay' + (n.relays.length > 1 ? 's' : ''), n.relays.join(', '))
      row('Directory key', groups(n.directoryKey), true)
      if (n.devnetDir) this.devnet.value = n.devnetDir
      else { this.relay.value = n.relays[0] || ''; this.key.value = n.directoryKey || '' }
    }
    this.back.hidden = !n.configured
  }

  private async change (body: NetworkChange): Promise<void> {
    const { api, state, shell } = this.d
    show(this.error, false)
    try {
      const s = await api.changeNetwork(body)
      state.pollGen++
      state.apply(s)
      state.convs.clear()
      shell.notice('Network changed. Log in again.')
      this.d.setAuthMode('login')
      shell.screen('login')
    } catch (e) {
      this.fail((e as Error).message)
    }
  }
}
