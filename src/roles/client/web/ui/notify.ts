// Browser notifications, opt-in: the header's button asks for permission once and
// turns them on or off (remembered in this browser's localStorage). A notification
// names who wrote and where, never the text (it may show on a locked screen), and
// only for messages the reader is not looking at: another conversation, or any
// while the tab is hidden.
import { byId } from './dom.js'

const KEY = 'marshmello.notify'

export class Notifier {
  private readonly button = byId('nav-notify', HTMLButtonElement)
  private on = false

  constructor () {
    if (typeof Notification === 'undefined') return // the button stays hidden
    this.button.hidden = false
    let wanted = false
    try { wanted = localStorage.getItem(KEY) === '1' } catch {}
    this.set(wanted && Notification.permission === 'granted')
    this.button.addEventListener('click', () => { void this.toggle() })
  }

  private set (on: boolean): void {
    this.on = on
    this.button.textContent = on ? 'Notifications on' : 'Notifications off'
    this.button.setAttribute('aria-pressed', String(on))
    try { localStorage.setItem(KEY, on ? '1' : '0') } catch {}
  }

  private async toggle (): Promise<void> {
    if (this.on) return this.set(false)
    const p = Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission
    this.set(p === 'granted')
  }

  /** `title` e.g. "alice in #lobby"; `tag` folds notifications of one conversation into one */
  notify (title: string, tag: string): void {
    if (!this.on || Notification.permission !== 'granted') return
    try {
      const n = new Notification(title, { body: 'New message in Marshmello', tag })
      n.onclick = () => { window.focus(); n.close() }
    } catch { /* some browsers only notify from a service worker */ }
  }
}
