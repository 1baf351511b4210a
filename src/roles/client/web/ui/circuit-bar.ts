// The circuit bar: the path this computer's requests take right now, drawn as You →
// entry → middle → exit → server with each hop's nickname and fingerprint prefix,
// and the "New circuit" button. Hops arrive from GET /api/circuit and from the live
// `circuit` events (live.ts).
import type { HopView } from '../wire.js'
import type { Api } from './api.js'
import { byId, clear, el } from './dom.js'
import type { Shell } from './shell.js'

export class CircuitBar {
  private readonly path = byId('circuit-path', HTMLElement)
  private readonly button = byId('circuit-new', HTMLButtonElement)
  private readonly label = byId('circuit-new-label', HTMLElement)

  constructor (private readonly api: Api, private readonly shell: Shell) {
    this.button.addEventListener('click', () => { void this.rebuild() })
  }

  draw (hops: HopView[]): void {
    const path = this.path
    clear(path)
    const you = el('li', 'hop you')
    const box = el('span', 'box')
    box.appendChild(el('span', 'nick', 'You'))
    box.appendChild(el('span', 'fp', 'this computer'))
    you.appendChild(box)
    path.appendChild(you)
    if (!hops.length) { path.appendChild(el('li', 'empty', 'no circuit yet')); return }
    const relays = hops.filter((h) => h.role !== 'server').length
    hops.forEach((h, i) => {
      const server = h.role === 'server'
      const position = server ? 'final hop' : i === 0 ? 'entry' : i === relays - 1 ? 'exit' : 'middle'
      const li = el('li', 'hop node ' + (server ? 'server' : 'relay'))
      li.title = `${position} · ${h.fingerprint} at ${h.host}:${h.port}`
      const b = el('span', 'box')
      const top = el('span', 'nick', server ? 'server' : h.nickname)
      top.appendChild(el('span', 'role', position))
      b.appendChild(top)
      b.appendChild(el('span', 'fp', h.fingerprint.slice(0, 8)))
      li.appendChild(b)
      path.appendChild(li)
    })
  }

  /** the current circuit (`fresh`: a new one) */
  async refresh (fresh = false): Promise<void> {
    try {
      this.draw((await this.api.circuit(fresh)).hops)
    } catch (e) {
      this.draw([])
      this.shell.notice('Circuit: ' + (e as Error).message, true)
    }
  }

  private async rebuild (): Promise<void> {
    this.button.disabled = true
    this.label.textContent = 'Building…'
    await this.refresh(true)
    this.button.disabled = false
    this.label.textContent = 'New circuit'
  }
}
