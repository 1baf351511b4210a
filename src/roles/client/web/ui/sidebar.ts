// The chat screen's sidebar: the joined rooms and the DM conversations as buttons
// (with unread counts, or a loud mark when a contact's key changed), and the two
// small forms that join a room or open a DM, each name checked against the name
// rules (src/names.ts), and the rooms that exist on the server (names and message
// counts, a page at a time; one click joins). Opening a conversation is the caller's `select`.
import { ROOM_HTML_PATTERN, ROOM_MAX, USERNAME_HTML_PATTERN, USERNAME_MAX, toRoomName, toUsername } from '../../../../names.js'
import type { Api } from './api.js'
import type { RoomInfoView } from '../wire.js'
import { byId, clear, el, time } from './dom.js'
import type { Shell } from './shell.js'
import { convKey, type UiState, type View } from './state.js'

export interface SidebarDeps { api: Api, state: UiState, shell: Shell, select: (v: View) => Promise<void> }

export class Sidebar {
  private readonly rooms = byId('room-list', HTMLElement)
  private readonly dms = byId('dm-list', HTMLElement)
  private readonly joinName = byId('join-name', HTMLInputElement)
  private readonly dmName = byId('dm-name', HTMLInputElement)
  private readonly allRooms = byId('all-rooms', HTMLElement)
  private readonly allMore = byId('all-rooms-more', HTMLButtonElement)
  /** the server's rooms listed so far, and where the next page starts (null: none left) */
  private listed: RoomInfoView[] = []
  private nextAfter: string | null | undefined = undefined
  /** a fetch of the list after room activity is under way */
  private refreshing = false

  constructor (private readonly d: SidebarDeps) {
    this.joinName.pattern = ROOM_HTML_PATTERN
    this.joinName.maxLength = ROOM_MAX
    this.dmName.pattern = USERNAME_HTML_PATTERN
    this.dmName.maxLength = USERNAME_MAX
    byId('join-form', HTMLFormElement).addEventListener('submit', (ev) => { ev.preventDefault(); void this.join() })
    byId('dm-form', HTMLFormElement).addEventListener('submit', (ev) => { ev.preventDefault(); void this.openDm() })
    // the next page while there is one, else the list again from the start
    this.allMore.addEventListener('click', () => { void this.loadRooms(typeof this.nextAfter === 'string') })
  }

  /** the first page of the server's rooms (more: the next page after those listed) */
  async loadRooms (more = false): Promise<void> {
    try {
      const page = await this.d.api.roomList(more && this.nextAfter ? this.nextAfter : undefined)
      this.listed = more ? [...this.listed, ...page.rooms] : page.rooms
      this.nextAfter = page.hasMore ? page.cursor : null
      this.renderAll()
    } catch (e) { this.d.shell.notice((e as Error).message, true) }
  }

  /**
   * A message was sent or arrived in `room`: a shown list that does not have it (or says no
   * room holds messages) is out of date, so it is fetched again (one fetch at a time).
   */
  noteRoomActivity (room: string): void {
    if (this.nextAfter === undefined || this.refreshing || this.listed.some((r) => r.name === room)) return
    if (typeof this.nextAfter === 'string') return // a partial list: the room may be on a later page
    this.refreshing = true
    void this.loadRooms().finally(() => { this.refreshing = false })
  }

  /** forgets the listed rooms (signed out) */
  resetRooms (): void {
    this.listed = []
    this.nextAfter = undefined
    this.renderAll()
  }

  private renderAll (): void {
    clear(this.allRooms)
    for (const r of this.listed) {
      const li = el('li')
      const b = el('button', this.d.state.rooms.includes(r.name) ? 'joined' : '')
      b.type = 'button'
      b.dataset.name = r.name
      b.appendChild(el('span', '', '#' + r.name))
      b.appendChild(el('span', 'count', `${r.messages} msg${r.messages === 1 ? '' : 's'}`))
      b.title = `${r.messages} message${r.messages === 1 ? '' : 's'}, the last ${time(r.lastAt).full}`
      b.addEventListener('click', () => { void this.joinRoom(r.name) })
      li.appendChild(b)
      this.allRooms.appendChild(li)
    }
    if (this.nextAfter === null && !this.listed.length) this.allRooms.appendChild(el('li', 'hint', 'no room holds messages yet'))
    this.allMore.textContent = typeof this.nextAfter === 'string' ? 'More rooms' : this.nextAfter === null ? 'Refresh the list' : 'Show rooms on the server'
  }

  render (): void {
    const { state } = this.d
    clear(this.rooms)
    for (const r of state.rooms) this.rooms.appendChild(this.item('#' + r, { kind: 'room', name: r }))
    clear(this.dms)
    for (const p of state.dmPeers) this.dms.appendChild(this.item(p, { kind: 'dm', name: p }))
    if (!state.dmPeers.length) this.dms.appendChild(el('li', 'hint', 'no conversations yet'))
  }

  private item (label: string, v: View): HTMLLIElement {
    const { state } = this.d
    const li = el('li')
    const b = el('button', state.isOpen(v) ? 'active' : '')
    b.type = 'button'
    b.dataset.kind = v.kind
    b.dataset.name = v.name
    b.appendChild(el('span', '', label))
    const unread = state.unread.get(convKey(v))
    if (v.kind === 'dm' && state.contacts.get(v.name)?.status === 'changed') b.appendChild(el('span', 'badge alert', 'key!'))
    else if (unread) b.appendChild(el('span', 'badge', unread))
    b.addEventListener('click', () => { void this.d.select(v) })
    li.appendChild(b)
    return li
  }

  private async join (): Promise<void> {
    const name = toRoomName(this.joinName.value.trim())
    if (name === null) return
    if (await this.joinRoom(name)) this.joinName.value = ''
  }

  private async joinRoom (name: string): Promise<boolean> {
    try {
      const r = await this.d.api.join(name)
      this.d.state.rooms = r.rooms
      this.renderAll()
      await this.d.select({ kind: 'room', name })
      return true
    } catch (e) { this.d.shell.notice((e as Error).message, true); return false }
  }

  private async openDm (): Promise<void> {
    const name = toUsername(this.dmName.value.trim())
    if (name === null) return
    this.dmName.value = ''
    this.d.state.addDmPeer(name)
    await this.d.select({ kind: 'dm', name })
  }
}
