// The web UI's one session: the ChatClient, the network it talks to, and the
// background long-polls through the onion (one per joined room, one for DMs) that
// keep a bounded cache of recent messages and feed new ones to the page's event
// stream. Changing the network logs out and starts a fresh client. Never logs
// message text, passwords or the token.
import { MarshmelloError } from '../../../errors.js'
import { toRoomName } from '../../../names.js'
import type { ChatClient, ChatMessage } from '../chat-client.js'
import { fetchConsensus, readDevnet, type NetworkSettings } from '../network.js'
import type { ClientArgs } from '../setup.js'
import { EventFeed } from './events.js'
import type { HopView, MessageView, NetworkChange, NetworkView } from './wire.js'

export type { NetworkChange } from './wire.js'
const KEEP = 200 // messages cached per room and for DMs

export interface SessionComponents {
  openClient: (a: ClientArgs) => Promise<ChatClient>
  resolveNetwork: (a: ClientArgs) => Promise<NetworkSettings>
  /** checks that a network answers with a consensus signed by its key */
  probeNetwork?: (n: NetworkSettings) => Promise<void>
  /** pause after a failed long-poll before the next one */
  retryMs?: number
}

class Timeline {
  readonly byId = new Map<string, ChatMessage>()
  add (m: ChatMessage): boolean {
    if (this.byId.has(m.id)) return false
    this.byId.set(m.id, m)
    if (this.byId.size > KEEP * 2) {
      const drop = [...this.byId.keys()].slice(0, this.byId.size - KEEP * 2)
      for (const k of drop) this.byId.delete(k)
    }
    return true
  }

  list (filter?: (m: ChatMessage) => boolean): ChatMessage[] {
    const all = [...this.byId.values()].filter(filter ?? (() => true))
    return all.sort((a, b) => a.sentAt - b.sentAt).slice(-KEEP)
  }
}

/** what the page sees of a message: DMs that failed verification carry no text */
export function view (m: ChatMessage): MessageView {
  const out: MessageView = { id: m.id, from: m.from, sentAt: m.sentAt, text: null }
  if (m.room !== undefined) { out.room = m.room; out.text = m.text; return out }
  out.to = m.to
  out.verified = m.verified === true
  out.text = m.verified === true ? m.text : null
  if (m.warning) out.warning = m.warning
  return out
}

export const dmPeer = (me: string, m: ChatMessage): string => (m.from === me ? m.to ?? m.from : m.from)

export class WebSession {
  readonly events = new EventFeed()
  client: ChatClient | null = null
  network: NetworkSettings | null = null
  networkError: string | null = null
  private rooms = new Map<string, { timeline: Timeline, ready: Promise<void> }>()
  private dms: { timeline: Timeline, ready: Promise<void> } | null = null
  private generation = 0
  private circuitKey = ''
  private circuitTimer: NodeJS.Timeout | null = null
  private closed = false

  constructor (private args: ClientArgs & { room?: string }, private readonly c: SessionComponents) {}

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
    this.circuitTimer = setInterval(() => this.checkCircuit(), 1000)
    this.circuitTimer.unref()
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

  async signup (username: string, password: string): Promise<void> {
    const client = this.need()
    if (client.loggedIn) await this.logout()
    await client.register(username, password)
    await client.login(username, password)
    this.afterLogin()
  }

  async login (username: string, password: string): Promise<void> {
    const client = this.need()
    if (client.loggedIn) await this.logout()
    await client.login(username, password)
    this.afterLogin()
  }

  private afterLogin (): void {
    this.generation++
    this.events.clear()
    for (const r of new Set(['lobby', toRoomName(this.args.room ?? 'lobby')])) if (r !== null) this.join(r)
    const timeline = new Timeline()
    this.dms = { timeline, ready: this.follow(this.generation, timeline, (o) => this.me().client.readDms(o), (m) => this.events.push({ type: 'dm', peer: dmPeer(this.me().name, m), message: view(m) })) }
  }

  async logout (): Promise<void> {
    this.generation++
    this.rooms.clear()
    this.dms = null
    this.events.clear()
    await this.client?.logout()
  }

  joinedRooms (): string[] { return [...this.rooms.keys()] }

  join (room: string): void {
    this.me()
    if (this.rooms.has(room)) return
    const timeline = new Timeline()
    this.rooms.set(room, { timeline, ready: this.follow(this.generation, timeline, (o) => this.me().client.readRoom(room, o), (m) => this.events.push({ type: 'room', room, message: view(m) })) })
  }

  leave (room: string): void {
    this.rooms.delete(room) // its loop notices at its next turn
  }

  /** recent messages of a room: the followed cache, or one read through the onion */
  async roomMessages (room: string): Promise<ChatMessage[]> {
    const { client } = this.me()
    const r = this.rooms.get(room)
    if (r) { await r.ready; return r.timeline.list() }
    const p = await client.readRoom(room, { latest: true, limit: 50 })
    return p.messages
  }

  async sendRoom (room: string, text: string): Promise<ChatMessage> {
    const m = await this.me().client.sendRoom(room, text)
    // other pages of this UI hear of it now; the page that sent it has it already
    if (this.rooms.get(room)?.timeline.add(m)) this.events.push({ type: 'room', room, message: view(m) })
    return m
  }

  async conversation (peer: string): Promise<ChatMessage[]> {
    const { name } = this.me()
    if (!this.dms) return []
    await this.dms.ready
    return this.dms.timeline.list((m) => dmPeer(name, m) === peer)
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

  async sendDm (peer: string, text: string): Promise<ChatMessage> {
    const m = await this.me().client.sendDm(peer, text)
    if (this.dms?.timeline.add(m)) this.events.push({ type: 'dm', peer, message: view(m) })
    return m
  }

  /**
   * Catches up (the newest KEEP messages, in one read), then
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
      let failing = false
      while (alive()) {
        try {
          if (!caughtUp) {
            // the newest page, then everything after it as it comes
            const p = await read({ latest: true, limit: KEEP })
            p.messages.forEach((m) => timeline.add(m))
            cursor = p.cursor ?? cursor
            caughtUp = true
            readyResolve()
            continue
          }
          const p = await read({ after: cursor, wait: 25, limit: 200 })
          if (!alive()) break
          for (const m of p.messages) if (timeline.add(m)) emit(m)
          cursor = p.cursor ?? cursor
          if (failing) { failing = false; this.events.push({ type: 'status', ok: true, message: 'connected again' }) }
        } catch (err) {
          readyResolve()
          if (!alive()) break
          if (!failing) {
            failing = true
            this.events.push({ type: 'status', ok: false, message: `network trouble, retrying: ${(err as Error).message}` })
          }
          await new Promise((resolve) => setTimeout(resolve, this.c.retryMs ?? 2000))
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
      if (!/^[0-9a-f]{64}$/i.test(change.directoryKey)) throw new MarshmelloError('MM_ERR_CONFIG', 'the directory key must be 64 hex characters (the fingerprint the server printed)')
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
    this.events.clear()
    const c = this.client
    this.client = null
    if (!c) return
    await c.logout().catch(() => {})
    await c.circuits.close().catch(() => {})
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.circuitTimer) clearInterval(this.circuitTimer)
    await this.shutClient()
    this.events.wakeAll()
  }
}

async function probe (n: NetworkSettings): Promise<void> {
  await fetchConsensus(n.relays, n.directoryKey)
}
