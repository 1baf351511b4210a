// The terminal chat once logged in: the current room followed by long-poll, every DM
// shown as it arrives (and those missed since the last session at login), the other
// joined rooms checked for unread messages, the status line (the prompt) kept up to
// date, and what the user types sent through the outbox, so nothing typed during an
// outage is lost: it waits, is sent once the network is back, and each state is shown.
// Joined rooms, the place and what was seen are kept in the profile (chat-state.ts).
// Slash commands are commands.ts's.
import { isMarshmelloError } from '../../../errors.js'
import { checkMessageText } from '../../../limits.js'
import type { Clock } from '../../common/clock.js'
import { KeyChangedError, type ChatClient, type ChatMessage } from '../chat-client.js'
import { KeptOutbox, type Sent } from '../kept-outbox.js'
import type { Outbox, OutboxItem } from '../outbox.js'
import { joinRoom, leaveRoom, loadChatState, updateChatState, type ChatState } from '../profile/chat-state.js'
import { formatMessage, zoneDescription } from './format.js'
import type { Screen } from './screen.js'
import { statusPrompt } from './status.js'

export type View = { room: string } | { dm: string }

/** messages shown when a room is opened (more when more are unread, up to MAX_BACKLOG) */
const BACKLOG = 20
const MAX_BACKLOG = 50
/** how often the other joined rooms are checked for unread messages */
const OTHER_ROOMS_MS = 15_000
/** a send that takes longer than this is shown as "sending" */
const SLOW_SEND_MS = 1500
const LONG_POLL_S = 25

export class ChatSession {
  view: View
  state!: ChatState
  readonly unreadRooms = new Map<string, number>()
  readonly unreadDms = new Map<string, number>()
  readonly outbox: Outbox<Sent>
  /** the outbox as kept in the profile (sealed), so nothing typed is lost on exit */
  readonly kept: KeptOutbox
  private gen = 0
  quitting = false
  /** the oldest message shown in the current view (where /older goes on from); undefined: nothing older */
  private older: { view: View, before?: string } | null = null
  private readonly announced = new Set<number>()
  private readonly slow = new Map<number, { cancel (): void }>()
  private saveTimer: { cancel (): void } | null = null

  constructor (readonly client: ChatClient, readonly screen: Screen, readonly home: string | undefined, readonly clock: Clock, private readonly startView?: View) {
    this.view = startView ?? { room: 'lobby' }
    this.kept = new KeptOutbox({
      client,
      clock,
      // the terminal resumes on "reconnected" only (its loops back off): each queued line says "queued"
      probeMs: 0,
      describe: errText,
      now: () => clock.now(),
      onChange: (item) => this.outboxChanged(item),
      onKeepError: (err) => this.screen.say(`! unsent messages could not be kept in the profile (${errText(err)}); they are lost if the chat ends before they are sent`),
    })
    this.outbox = this.kept.outbox
  }

  get me (): string { return this.client.username! }

  async start (): Promise<void> {
    this.state = await loadChatState(this.home, this.me)
    const saved = this.state.current
    if (!this.startView && saved) this.view = 'room' in saved ? { room: saved.room } : { dm: saved.dm }
    if ('room' in this.view) joinRoom(this.state, this.view.room)
    // the kept outbox pauses and resumes itself with the connectivity
    this.client.connectivity.onChange((online) => {
      if (online) this.screen.say('✓ reconnected')
      else this.screen.say('! offline — reconnecting… (what you type is kept and sent when the network is back)')
      this.refresh()
    })
    // what the last session left unsent goes out now, under its old client ids (stored once)
    const { restored, problem } = await this.kept.restore()
    if (problem) this.screen.say(`! the kept outbox could not be read and was set aside (outbox.json.damaged): ${problem}`)
    if (restored.length) {
      this.screen.say(`… ${restored.length} message${restored.length === 1 ? '' : 's'} from your last session not sent yet:`,
        ...restored.map((i) => `  ${i.n}: "${preview(i.text)}" to ${'room' in i.target ? `#${i.target.room}` : i.target.to}${i.state === 'failed' ? ` — not sent (${i.error ?? 'failed'}); /retry ${i.n}` : ' — sending'}`))
      for (const i of restored) if (i.state !== 'failed') this.announced.add(i.n) // so "✓ sent" follows each
    }
    this.screen.say(`times are local (${zoneDescription(this.clock.now())}); /help lists the commands`)
    this.refresh()
    if ('dm' in this.view) await this.openDm(this.view.dm).catch((err) => this.error(err))
    else void this.followRoom(this.view.room, this.gen)
    void this.followDms()
    void this.watchOtherRooms()
    this.save()
  }

  // ---- what the user does ----

  /** a line of text to the current room or DM, through the outbox */
  send (text: string): void {
    const check = checkMessageText(text)
    if (!check.ok) {
      if (check.reason === 'empty') return
      this.screen.say(`! ${check.explain}; your text is back in the input line to shorten it`)
      this.screen.putBack(text)
      return
    }
    const added = this.outbox.add('room' in this.view ? { room: this.view.room } : { to: this.view.dm }, text)
    if (!added.ok) {
      this.screen.say(`! ${this.outbox.pending().length} messages wait to be sent already; not sent (your text is back in the input line)`)
      this.screen.putBack(text)
    }
  }

  enterRoom (room: string): boolean {
    if (!joinRoom(this.state, room)) return false
    this.view = { room }
    this.gen++
    this.save()
    this.refresh()
    void this.followRoom(room, this.gen)
    return true
  }

  leave (room: string): void {
    leaveRoom(this.state, room)
    this.unreadRooms.delete(room)
    this.save()
    this.refresh()
  }

  /** switches to the DMs with `peer` and shows their history, newest last (the key check is the caller's) */
  async openDm (peer: string): Promise<void> {
    this.view = { dm: peer }
    this.gen++
    this.unreadDms.delete(peer)
    this.save()
    this.refresh()
    const gen = this.gen
    const history = await this.client.dmHistory(peer, { limit: BACKLOG })
    if (gen === this.gen) this.older = { view: { dm: peer }, before: history[0]?.id }
    if (history.length) this.screen.say(`── your last ${dmCount(history.length)} with ${peer}${history.length >= BACKLOG ? ' (/older shows earlier ones)' : ''} ──`, ...history.map((m) => this.format(m)))
    else this.screen.say(`── no DMs with ${peer} yet ──`)
  }

  /**
   * The page of history before the oldest shown here (GET …?before=, PROTOCOL §6), printed
   * between two rulers; false when there is nothing older.
   */
  async showOlder (): Promise<boolean> {
    const view = this.view
    const at = this.older
    if (at === null || !sameView(at.view, view) || at.before === undefined) return false
    let messages: ChatMessage[]
    let before: string | undefined
    if ('room' in view) {
      const p = await this.client.readRoom(view.room, { before: at.before, limit: MAX_BACKLOG })
      messages = p.messages
      before = p.hasMore ? p.cursor : undefined
    } else {
      const p = await this.client.dmOlder(view.dm, at.before, { limit: MAX_BACKLOG })
      messages = p.messages
      before = p.before
    }
    if (!sameView(this.view, view)) return true // moved on meanwhile: not this view's page any more
    this.older = { view, before }
    if (!messages.length) return false
    const where = 'room' in view ? `#${view.room}` : `with ${view.dm}`
    this.screen.say(`── ${messages.length} older message${messages.length === 1 ? '' : 's'} ${where} ──`, ...messages.map((m) => this.format(m)),
      `── end of the older page${before === undefined ? ' (the start of the history)' : '; /older for more'} ──`)
    return true
  }

  retry (n: number): boolean { return this.outbox.retry(n) }

  /** the status line: where you are, unread counts, offline, messages waiting */
  refresh (): void {
    this.screen.setPrompt(statusPrompt({
      view: this.view,
      unreadRooms: this.unreadRooms,
      unreadDms: this.unreadDms,
      online: this.client.connectivity.online,
      outbox: this.outbox.pending(),
    }))
  }

  /** keeps the state now (and the place): before quitting */
  async flush (): Promise<void> {
    this.saveTimer?.cancel()
    this.saveTimer = null
    const view = this.view
    await updateChatState(this.home, this.me, (s) => {
      s.rooms = this.state.rooms
      s.seenRooms = this.state.seenRooms
      s.seenDms = this.state.seenDms
      s.current = 'room' in view ? { room: view.room } : { dm: view.dm }
    })
  }

  error (err: unknown): void {
    if (err instanceof KeyChangedError) this.screen.say(`⚠ ${err.message}`)
    else this.screen.say(`! ${errText(err)}`)
  }

  // ---- what the network brings ----

  private async followRoom (room: string, gen: number): Promise<void> {
    const live = () => !this.quitting && gen === this.gen
    const backlog = Math.min(Math.max(BACKLOG, this.unreadRooms.get(room) ?? 0), MAX_BACKLOG)
    this.unreadRooms.delete(room)
    this.refresh()
    let cursor: string | undefined
    let failures = 0
    let lastError = ''
    for (let first = true; live();) {
      try {
        // first the last messages of the room, in one request however long its history
        const p = first
          ? await this.client.readRoom(room, { latest: true, limit: backlog })
          : await this.client.readRoom(room, { after: cursor, wait: LONG_POLL_S })
        if (!live()) return
        if (first) this.older = { view: { room }, before: p.hasMore ? p.messages[0]?.id : undefined }
        first = false
        failures = 0
        lastError = ''
        for (const m of p.messages) this.screen.say(this.format(m))
        cursor = p.cursor ?? cursor
        if (cursor && p.messages.length) { this.state.seenRooms[room] = cursor; this.saveSoon() }
      } catch (err) {
        if (!live()) return
        lastError = this.loopError(err, lastError)
        await this.backOff(++failures)
      }
    }
  }

  private async followDms (): Promise<void> {
    let cursor = this.state.seenDms
    let failures = 0
    let lastError = ''
    for (let first = true; !this.quitting;) {
      try {
        if (first) {
          // what arrived since the last session (or, the first time, the last few)
          const p = cursor ? await this.client.readDms({ after: cursor, limit: 200 }) : await this.client.readDms({ latest: true, limit: BACKLOG })
          first = false
          const shown = p.messages.slice(-MAX_BACKLOG)
          if (shown.length) {
            const head = cursor ? `── ${p.messages.length} DM${p.messages.length === 1 ? '' : 's'} while you were away${shown.length < p.messages.length ? ` (the last ${shown.length} shown; marshmello read --dms has all)` : ''} ──` : `── your last ${dmCount(shown.length)} ──`
            this.screen.say(head, ...shown.map((m) => this.format(m)))
          }
          if (cursor) for (const m of p.messages) this.countDm(m)
          cursor = p.cursor ?? cursor
        } else {
          const p = await this.client.readDms({ after: cursor, wait: LONG_POLL_S })
          for (const m of p.messages) { this.screen.say(this.format(m)); this.countDm(m) }
          cursor = p.cursor ?? cursor
        }
        failures = 0
        lastError = ''
        if (cursor !== this.state.seenDms) { this.state.seenDms = cursor; this.saveSoon() }
        this.refresh()
      } catch (err) {
        if (this.quitting) return
        lastError = this.loopError(err, lastError)
        await this.backOff(++failures)
      }
    }
  }

  private countDm (m: ChatMessage): void {
    const peer = m.from === this.me ? m.to! : m.from
    if (m.from === this.me || ('dm' in this.view && this.view.dm === peer)) return
    this.unreadDms.set(peer, (this.unreadDms.get(peer) ?? 0) + 1)
  }

  /** counts what is new in the joined rooms the user is not in (their "seen" moves only when opened) */
  private async watchOtherRooms (): Promise<void> {
    while (!this.quitting) {
      if (this.client.connectivity.online) {
        for (const room of [...this.state.rooms]) {
          if (this.quitting || ('room' in this.view && this.view.room === room)) continue
          try {
            const seen = this.state.seenRooms[room]
            if (!seen) {
              const p = await this.client.readRoom(room, { latest: true, limit: 1 })
              if (p.cursor) { this.state.seenRooms[room] = p.cursor; this.saveSoon() }
              continue
            }
            const p = await this.client.readRoom(room, { after: seen, limit: 200 })
            if ('room' in this.view && this.view.room === room) continue
            this.unreadRooms.set(room, p.messages.filter((m) => m.from !== this.me).length)
          } catch { /* the followers report the network; a room's own error shows when it is opened */ }
        }
        this.refresh()
      }
      await this.clock.sleep(OTHER_ROOMS_MS)
    }
  }

  /** a loop's failure: network errors are the connectivity line's; others once each, not once per retry */
  private loopError (err: unknown, last: string): string {
    if (this.client.connectivity.isNetworkError(err)) return last
    const text = errText(err)
    if (text !== last) this.error(err)
    return text
  }

  private backOff (failures: number): Promise<void> {
    return this.clock.sleep(Math.min(15_000, 1000 * 2 ** Math.min(failures - 1, 4)))
  }

  private outboxChanged (item: OutboxItem<Sent>): void {
    const what = `${item.n}: "${preview(item.text)}"`
    switch (item.state) {
      case 'queued':
        if (this.outbox.isPaused && !this.announced.has(item.n)) {
          this.announced.add(item.n)
          this.screen.say(`… queued ${what} — offline; it is sent when the network is back`)
        }
        break
      case 'sending':
        if (!this.slow.has(item.n) && !this.announced.has(item.n)) {
          this.slow.set(item.n, this.clock.setTimeout(() => {
            this.slow.delete(item.n)
            if (item.state !== 'sending') return
            this.announced.add(item.n)
            this.screen.say(`… sending ${what}`)
          }, SLOW_SEND_MS))
        }
        break
      case 'sent':
        this.slow.get(item.n)?.cancel()
        this.slow.delete(item.n)
        if (this.announced.delete(item.n)) this.screen.say(`✓ sent ${what}`)
        break
      case 'failed':
        this.slow.get(item.n)?.cancel()
        this.slow.delete(item.n)
        this.announced.delete(item.n)
        this.screen.say(`✗ not sent ${what} — ${item.error ?? 'failed'}; /retry ${item.n} sends it again`)
        break
    }
    this.refresh()
  }

  private format (m: ChatMessage): string {
    return formatMessage(m, { now: this.clock.now() })
  }

  private save (): void {
    void this.flush().catch((err) => this.error(err))
  }

  private saveSoon (): void {
    if (this.saveTimer) return
    this.saveTimer = this.clock.setTimeout(() => { this.saveTimer = null; this.save() }, 1000)
  }
}

const sameView = (a: View, b: View): boolean => 'room' in a ? 'room' in b && a.room === b.room : 'dm' in b && a.dm === b.dm

export const errText = (err: unknown): string => isMarshmelloError(err) ? err.message : (err as Error)?.message ?? String(err)

/** "DM", "2 DMs" */
const dmCount = (n: number) => n === 1 ? 'DM' : `${n} DMs`

const preview = (text: string): string => {
  const cps = [...text]
  return cps.length > 40 ? cps.slice(0, 40).join('') + '…' : text
}
