// The web UI's one session: the ChatClient, the network it talks to, and the
// background long-polls through the onion (one per joined room, one for DMs) that
// keep a bounded cache of recent messages and feed new ones to the page's event
// stream; the outbox of sends that wait for the network (kept-outbox.ts, the terminal's too), one online /
// offline state for all of them, and the joined rooms kept in the profile. Changing
// the network logs out and starts a fresh client. Never logs message text,
// passwords or the token.
import { promises as fs } from 'node:fs'
import { MarshmelloError } from '../../../errors.js'
import { toRoomName } from '../../../names.js'
import { systemClock, type Clock } from '../../common/clock.js'
import type { ChatClient, ChatMessage } from '../chat-client.js'
import { fetchConsensus, networkPin, readDevnet, type NetworkSettings } from '../network.js'
import { profileDir } from '../profile/files.js'
import { profileExists } from '../profile/identity.js'
import type { ClientArgs } from '../setup.js'
import { EventFeed } from './events.js'
import { MAX_JOINED, joinRoom, leaveRoom, loadChatState, updateChatState } from '../profile/chat-state.js'
import { KeptOutbox, type Sent } from '../kept-outbox.js'
import type { OutboxItem, OutboxTarget } from '../outbox.js'
import { PAGE, Timeline, dmPeer, view } from './timeline.js'
import { MESSAGE_MAX_CHARS, PASSWORD_MIN, PASSWORD_RULE, messageTooLong } from './ui/limits.js'
import type { HopView, MessagesPage, NetworkChange, NetworkView, OutboxView, Target } from './wire.js'

export type { NetworkChange } from './wire.js'
export { view, dmPeer } from './timeline.js'
export { MESSAGE_MAX_CHARS }
/**
 * The newest DMs read at login (the server's largest page: DMs are one stream, and the
 * conversations are found in it); a room reads one page, the rest comes on request.
 */
const CATCH_UP = 200

export interface SessionComponents {
  openClient: (a: ClientArgs) => Promise<ChatClient>
  resolveNetwork: (a: ClientArgs) => Promise<NetworkSettings>
  /** checks that a network answers with a consensus signed by its key */
  probeNetwork?: (n: NetworkSettings) => Promise<void>
  /** pause after a failed long-poll or send before the next try */
  retryMs?: number
  clock?: Clock
}

/** an error that retrying may fix: the network, not the request (kind `unavailable`, or no code at all) */
export const transient = (err: unknown): boolean => !(err instanceof MarshmelloError) || err.kind === 'unavailable'

/** how a message's first try went: stored, queued (the network is down, or older sends are ahead), or refused for good */
export type FirstTry =
  | { outcome: 'sent' | 'queued', item: OutboxView }
  | { outcome: 'refused', item: OutboxView, error: unknown }

const targetView = (t: OutboxTarget): Target => 'room' in t ? { kind: 'room', name: t.room } : { kind: 'dm', name: t.to }

/** an outbox item as the page shows it: waiting and on the wire are both "sending" */
export function outboxView (i: Readonly<OutboxItem<Sent>>): OutboxView {
  const v: OutboxView = { clientId: i.clientId, target: targetView(i.target), text: i.text, state: i.state === 'sent' ? 'sent' : i.state === 'failed' ? 'failed' : 'sending', queuedAt: i.queuedAt, attempts: i.attempts }
  if (i.error !== undefined) v.error = i.error
  if (i.state === 'sent' && i.result) v.message = view(i.result)
  return v
}

export class WebSession {
  readonly events = new EventFeed()
  client: ChatClient | null = null
  network: NetworkSettings | null = null
  networkError: string | null = null
  /** false from the first failed request through the onion until one succeeds again */
  online = true
  private rooms = new Map<string, { timeline: Timeline, ready: Promise<void> }>()
  private dms: { timeline: Timeline, ready: Promise<void> } | null = null
  /** the one outbox (kept-outbox.ts, also the terminal's), kept sealed in the profile */
  private kept: KeptOutbox | null = null
  /** client ids whose sender waits for the first try: their changes are told to the page only after it */
  private readonly awaiting = new Set<string>()
  /** the last send error of each client id awaited, so a refusal reaches the page with its details */
  private readonly sendErrors = new Map<string, unknown>()
  private offConnectivity: (() => void) | null = null
  private generation = 0
  private circuitKey = ''
  private circuitTimer: { cancel (): void } | null = null
  private closed = false
  private readonly clock: Clock

  constructor (private args: ClientArgs & { room?: string }, private readonly c: SessionComponents) {
    this.clock = c.clock ?? systemClock
  }

  /** opens a client for the configured network; a missing network is reported, not thrown */
  async start (): Promise<void> {
    try {
      this.network = await this.c.resolveNetwork(this.args)
      this.client = await this.c.openClient(this.args)
      this.networkError = null
    } catch (err) {
      if (!(err instanceof MarshmelloError)) throw err
      this.networkError = err.message
    }
    this.circuitTimer = this.clock.setInterval(() => this.checkCircuit(), 1000)
  }

  get username (): string | null { return this.client?.loggedIn ? this.client.username : null }

  private need (): ChatClient {
    if (!this.client) throw new MarshmelloError('MM_ERR_NO_NETWORK', this.networkError ?? 'no network configured: open the network settings')
    return this.client
  }

  me (): { client: ChatClient, name: string } {
    const client = this.need()
    if (!client.loggedIn || !client.username) throw new MarshmelloError('MM_ERR_NOT_LOGGED_IN', 'log in first')
    return { client, name: client.username }
  }

  /**
   * Creates the account, then logs in. The password rule is checked here first, and a
   * profile this attempt created is removed again when the server refuses, so a failed
   * sign-up leaves nothing behind (the terminal branch moves this into ChatClient.register).
   */
  async signup (username: string, password: string): Promise<void> {
    const client = this.need()
    if (client.loggedIn) await this.logout()
    /** Thrown when a new password is shorter than the server accepts. */
    if ([...password].length < PASSWORD_MIN) throw new MarshmelloError('MM_ERR_PASSWORD', PASSWORD_RULE)
    const home = client.home
    const existed = await profileExists(home, username)
    try {
      await client.register(username, password)
    } catch (err) {
      if (!existed && await profileExists(home, username)) await fs.rm(profileDir(home, username), { recursive: true, force: true })
      throw err
    }
    await client.login(username, password)
    await this.afterLogin()
  }

  async login (username: string, password: string): Promise<void> {
    const client = this.need()
    if (client.loggedIn) await this.logout()
    await client.login(username, password)
    await this.afterLogin()
  }

  private async afterLogin (): Promise<void> {
    const { client, name } = this.me()
    this.generation++
    this.events.clear()
    this.online = true
    await this.closeOutbox()
    const gen = this.generation
    this.offConnectivity = client.connectivity.onChange((online, cause) => { if (gen === this.generation) this.setOnline(online, cause) })
    this.kept = new KeptOutbox({
      client,
      clock: this.clock,
      probeMs: this.c.retryMs,
      now: () => this.clock.now(),
      onChange: (item) => { if (gen === this.generation) this.outboxChanged(item) },
      onSendError: (item, err) => { if (this.awaiting.has(item.clientId)) this.sendErrors.set(item.clientId, err) },
    })
    // what the last run left unsent is shown pending and sent now, under its old client ids
    await this.kept.restore()
    // the joined rooms the terminal chat keeps too (profile/chat-state.ts); a damaged file is none
    const joined = await loadChatState(client.home, name).then((s) => s.rooms, () => [])
    for (const r of [...new Set(['lobby', ...joined, toRoomName(this.args.room ?? 'lobby') ?? 'lobby'])].slice(0, MAX_JOINED)) this.follow1(r)
    await this.saveRooms()
    const timeline = new Timeline()
    this.dms = { timeline, ready: this.follow(this.generation, timeline, (o) => this.me().client.readDms(o), (m) => this.events.push({ type: 'dm', peer: dmPeer(this.me().name, m), message: view(m) })) }
  }

  async logout (): Promise<void> {
    this.generation++
    this.rooms.clear()
    this.dms = null
    await this.closeOutbox()
    this.events.clear()
    await this.client?.logout()
  }

  /** stops sending; what is unsent stays kept in the profile for the next login */
  private async closeOutbox (): Promise<void> {
    this.offConnectivity?.()
    this.offConnectivity = null
    const kept = this.kept
    this.kept = null
    this.awaiting.clear()
    this.sendErrors.clear()
    await kept?.close().catch(() => {})
  }

  /** the page hears of each change, but of an awaited first try only once it is decided */
  private outboxChanged (item: OutboxItem<Sent>): void {
    if (item.state === 'sent' && item.result) {
      const m = item.result
      if ('room' in item.target) {
        if (this.rooms.get(item.target.room)?.timeline.add(m)) this.events.push({ type: 'room', room: item.target.room, message: view(m) })
      } else if (this.dms?.timeline.add(m)) {
        this.events.push({ type: 'dm', peer: dmPeer(this.me().name, m), message: view(m) })
      }
    }
    if (!this.awaiting.has(item.clientId)) this.events.push({ type: 'outbox', item: outboxView(item) })
  }

  joinedRooms (): string[] { return [...this.rooms.keys()] }

  /** follows `room` and remembers it in the profile */
  async join (room: string): Promise<void> {
    this.me()
    if (this.rooms.has(room)) return
    /** Thrown when the profile follows MAX_JOINED rooms already. */
    if (this.rooms.size >= MAX_JOINED) throw new MarshmelloError('MM_ERR_ROOMS_FULL', `you follow ${MAX_JOINED} rooms already; leave one first`)
    this.follow1(room)
    await this.saveRooms()
  }

  async leave (room: string): Promise<void> {
    this.rooms.delete(room) // its loop notices at its next turn
    await this.saveRooms()
  }

  private follow1 (room: string): void {
    if (this.rooms.has(room)) return
    const timeline = new Timeline()
    this.rooms.set(room, { timeline, ready: this.follow(this.generation, timeline, (o) => this.me().client.readRoom(room, o), (m) => this.events.push({ type: 'room', room, message: view(m) })) })
  }

  /** other pages of this UI hear of the joined rooms; the profile keeps them */
  private async saveRooms (): Promise<void> {
    const { client, name } = this.me()
    this.events.push({ type: 'rooms', rooms: this.joinedRooms() })
    const joined = this.joinedRooms()
    // this UI's joined list; the terminal's marks of what was seen stay for the rooms kept
    await updateChatState(client.home, name, (s) => {
      for (const r of [...s.rooms]) if (!joined.includes(r)) leaveRoom(s, r)
      for (const r of joined) joinRoom(s, r)
    }).catch(() => {}) // a read-only home (or a damaged chat.json) still chats
  }

  /**
   * A room's newest messages, or the page before message `before`: from the cache while it
   * has them, else from the server (GET …?before=, PROTOCOL §6); a room not followed is
   * read through the onion.
   */
  async roomMessages (room: string, before?: string): Promise<MessagesPage> {
    const { client } = this.me()
    const r = this.rooms.get(room)
    if (r) {
      await r.ready
      const cached = before === undefined || r.timeline.byId.has(before) ? r.timeline.page({ before }) : null
      if (cached && (before === undefined || cached.messages.length > 0)) {
        return { messages: cached.messages.map(view), older: cached.older || r.timeline.olderOnServer }
      }
    }
    const p = before === undefined ? await client.readRoom(room, { latest: true, limit: PAGE }) : await client.readRoom(room, { before, limit: PAGE })
    return { messages: p.messages.map(view), older: p.hasMore === true }
  }

  /** the DMs with `peer`: the newest cached page, or the one before `before` (from the server once the cache has none) */
  async conversation (peer: string, before?: string): Promise<MessagesPage> {
    const { client, name } = this.me()
    if (!this.dms) return { messages: [], older: false }
    await this.dms.ready
    const timeline = this.dms.timeline
    const mine = (m: ChatMessage) => dmPeer(name, m) === peer
    const cached = before === undefined || timeline.byId.has(before) ? timeline.page({ before, filter: mine }) : null
    if (cached && (before === undefined || cached.messages.length > 0)) {
      return { messages: cached.messages.map(view), older: cached.older || timeline.olderOnServer }
    }
    if (before === undefined) return { messages: [], older: false }
    const p = await client.dmOlder(peer, before, { limit: PAGE })
    return { messages: p.messages.map(view), older: p.before !== undefined }
  }

  /** every user this session has DMs with, most recent first */
  async dmPeers (): Promise<string[]> {
    const { name } = this.me()
    if (!this.dms) return []
    await this.dms.ready
    const seen = new Set<string>()
    for (const m of this.dms.timeline.list().reverse()) seen.add(dmPeer(name, m))
    return [...seen]
  }

  /** the sends not yet stored */
  pending (): OutboxView[] { return this.kept?.outbox.pending().map(outboxView) ?? [] }

  /**
   * Sends a message through the outbox: stored now, queued while the network is
   * down or older sends wait (sent when it is back), or refused (thrown, nothing queued).
   * With nothing ahead of it, waits for its first try, so a refusal for good (a changed
   * key, a bad name) leaves nothing queued and the page keeps the text. A client id
   * queued already answers with that item.
   */
  async send (target: Target, text: string, clientId: string): Promise<FirstTry> {
    this.me()
    /** Thrown when a text is longer than the one message limit (checked before anything is sent). */
    const long = messageTooLong(text)
    if (long) throw new MarshmelloError('MM_ERR_BAD_TEXT', long)
    const kept = this.kept!
    const box = kept.outbox
    const ahead = box.pending().some((i) => i.state === 'queued' || i.state === 'sending')
    const awaited = !ahead && !box.isPaused && !box.find(clientId)
    if (awaited) this.awaiting.add(clientId)
    const added = box.add(target.kind === 'room' ? { room: target.name } : { to: target.name }, text, { clientId })
    if (!added.ok) {
      this.awaiting.delete(clientId)
      /** Thrown when the outbox holds its most unsent messages already. */
      throw new MarshmelloError('MM_ERR_BUSY', `${box.pending().length} messages are waiting to be sent already; wait until the network is back`)
    }
    const item = added.item
    if (!awaited) return { outcome: 'queued', item: outboxView(item) }
    const outcome = await box.firstOutcome(item.n)
    this.awaiting.delete(clientId)
    const error = this.sendErrors.get(clientId)
    this.sendErrors.delete(clientId)
    if (outcome === 'sent') return { outcome: 'sent', item: outboxView(item) }
    if (outcome === 'failed') {
      kept.discard(item.n)
      return { outcome: 'refused', item: outboxView(item), error: error ?? new MarshmelloError('MM_ERR_HTTP', item.error ?? 'not sent') }
    }
    this.events.push({ type: 'outbox', item: outboxView(item) })
    return { outcome: 'queued', item: outboxView(item) }
  }

  retry (clientId: string): OutboxView {
    this.me()
    const item = this.kept?.outbox.find(clientId)
    /** Thrown when Retry names a message that is not waiting to be sent. */
    if (!item) throw new MarshmelloError('MM_ERR_NOT_FOUND', 'no such message waiting to be sent')
    if (item.state === 'failed') this.kept!.outbox.retry(item.n)
    return outboxView(item)
  }

  discard (clientId: string): void {
    this.me()
    const item = this.kept?.outbox.find(clientId)
    if (item) this.kept!.discard(item.n)
  }

  /** one status for the whole session: "offline" once, "reconnected" once */
  private setOnline (ok: boolean, err?: unknown): void {
    if (ok === this.online) return
    this.online = ok
    this.events.push(ok
      ? { type: 'status', ok: true, message: 'reconnected' }
      : { type: 'status', ok: false, message: `offline — reconnecting (${(err as Error)?.message ?? 'the network cannot be reached'})` })
  }

  /**
   * Catches up (the newest CATCH_UP messages, in one read), then
   * long-polls until the generation changes; new messages go to `emit`.
   * Resolves `ready` (the returned promise) once caught up or on first failure.
   */
  private follow (gen: number, timeline: Timeline, read: ChatClient['readDms'], emit: (m: ChatMessage) => void): Promise<void> {
    let readyResolve!: () => void
    const ready = new Promise<void>((resolve) => { readyResolve = resolve })
    const alive = () => !this.closed && gen === this.generation && (timeline === this.dms?.timeline || [...this.rooms.values()].some((r) => r.timeline === timeline))
    void (async () => {
      await Promise.resolve() // the caller stores the timeline first: alive() looks for it
      let cursor: string | undefined
      let caughtUp = false
      while (alive()) {
        try {
          if (!caughtUp) {
            // the newest page, then everything after it as it comes
            const p = await read({ latest: true, limit: timeline === this.dms?.timeline ? CATCH_UP : PAGE })
            p.messages.forEach((m) => timeline.add(m))
            if (p.hasMore) timeline.olderOnServer = true
            cursor = p.cursor ?? cursor
            caughtUp = true
            this.setOnline(true)
            readyResolve()
            continue
          }
          const p = await read({ after: cursor, wait: 25, limit: 200 })
          if (!alive()) break
          this.setOnline(true)
          for (const m of p.messages) if (timeline.add(m)) emit(m)
          cursor = p.cursor ?? cursor
        } catch (err) {
          readyResolve()
          if (!alive()) break
          if (transient(err)) this.setOnline(false, err)
          await this.clock.sleep(this.c.retryMs ?? 2000)
        }
      }
      readyResolve()
    })()
    return ready
  }

  describeNetwork (): NetworkView {
    const n = this.network
    return {
      configured: n !== null,
      error: this.networkError,
      devnetDir: n?.devnetDir ?? null,
      relays: n?.relays ?? [],
      directoryKey: n?.directoryKey ?? null,
    }
  }

  /** switches network after checking it answers; logs out and starts a fresh client */
  async changeNetwork (change: NetworkChange): Promise<void> {
    let next: ClientArgs
    let settings: NetworkSettings
    if ('devnet' in change) {
      settings = readDevnet(change.devnet)
      next = { ...this.args, devnet: change.devnet, relay: undefined, 'directory-key': undefined }
    } else {
      let url: URL
      try { url = new URL(change.relay) } catch { url = new URL('invalid:') }
      if (url.protocol !== 'https:' || !url.hostname || url.pathname !== '/' || url.search || url.hash) {
        throw new MarshmelloError('MM_ERR_CONFIG', 'the bootstrap relay must be an https://host:port URL')
      }
      if (!/^[0-9a-f]{64}(,[0-9a-f]{64}){0,15}$/i.test(change.directoryKey)) throw new MarshmelloError('MM_ERR_CONFIG', 'the directory key must be 64 hex characters (the fingerprint the server printed), comma-separated for several authorities')
      settings = { relays: [url.origin], directoryKey: change.directoryKey.toLowerCase() }
      next = { ...this.args, devnet: undefined, relay: [url.origin], 'directory-key': change.directoryKey.toLowerCase() }
    }
    await (this.c.probeNetwork ?? probe)(settings)
    const network = await this.c.resolveNetwork(next) // remembers it in the profile settings
    const client = await this.c.openClient(next)
    await this.shutClient()
    this.args = next
    this.network = network
    this.client = client
    this.networkError = null
  }

  /** the current circuit (built when there is none yet) as hops, relays then server */
  async circuit (fresh = false): Promise<HopView[]> {
    const client = this.need()
    if (fresh) await client.circuits.newCircuit()
    else await client.circuits.current()
    this.checkCircuit()
    return client.circuits.describe()
  }

  private checkCircuit (): void {
    const hops = this.client?.circuits.describe() ?? []
    const key = hops.map((h) => h.fingerprint).join(',')
    if (key === this.circuitKey) return
    this.circuitKey = key
    if (hops.length) this.events.push({ type: 'circuit', hops })
  }

  private async shutClient (): Promise<void> {
    this.generation++
    this.rooms.clear()
    this.dms = null
    await this.closeOutbox()
    this.events.clear()
    const c = this.client
    this.client = null
    if (!c) return
    await c.logout().catch(() => {})
    await c.circuits.close().catch(() => {})
  }

  async close (): Promise<void> {
    this.closed = true
    this.circuitTimer?.cancel()
    await this.shutClient()
    this.events.wakeAll()
  }
}

async function probe (n: NetworkSettings): Promise<void> {
  await fetchConsensus(n.relays, networkPin(n))
}
