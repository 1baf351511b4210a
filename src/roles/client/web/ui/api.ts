// The page's client for the local API (app.ts): every call carries the per-run token
// in a header, never a cookie; answers and errors are typed by wire.ts. A 403 for a
// token, Host or Origin problem means the page can no longer talk to its UI, which
// `onTokenRefused` hears once per refusal; a new link in the tab gives a new token
// (setToken). Leaves out retries (live.ts polls again; the UI's outbox resends).
import type { EventPage } from '../events.js'
import type { ErrorBody, HopView, MessagesPage, MessageView, NetworkChange, NetworkView, OutboxView, RoomListView, SessionView, WhoisView } from '../wire.js'

/** a send's answer: stored, or queued until the network is back */
export type SendResult = { message: MessageView, pending?: undefined } | { pending: OutboxView, message?: undefined }

export const TOKEN_HEADER = 'X-Marshmello-Token'

/** Thrown for every answer that is not 2xx, and when the page has no token. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string, readonly data: Partial<ErrorBody> = {}) {
    super(message)
  }
}

type Method = 'GET' | 'POST' | 'PUT'

export class Api {
  constructor (private token: string | null, private readonly onTokenRefused: () => void) {}

  setToken (token: string): void { this.token = token }

  get hasToken (): boolean { return this.token !== null }

  async call<T> (method: Method, path: string, body?: unknown): Promise<T> {
    if (this.token === null) throw new ApiError(403, 'MM_ERR_WEB_TOKEN', 'no token')
    const headers: Record<string, string> = { [TOKEN_HEADER]: this.token }
    const init: RequestInit = { method, headers, cache: 'no-store', credentials: 'omit' }
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json'
      init.body = JSON.stringify(body ?? {})
    }
    const res = await fetch(path, init)
    let data: unknown
    try { data = await res.json() } catch { data = null }
    if (!res.ok) {
      const e: Partial<ErrorBody> = (data as { error?: Partial<ErrorBody> } | null)?.error ?? {}
      if (res.status === 403 && e.code?.startsWith('MM_ERR_WEB_')) this.onTokenRefused()
      throw new ApiError(res.status, e.code ?? 'MM_ERR_HTTP', e.message ?? `HTTP ${res.status}`, e)
    }
    return data as T
  }

  session (): Promise<SessionView> { return this.call('GET', '/api/session') }
  signup (username: string, password: string): Promise<SessionView> { return this.call('POST', '/api/signup', { username, password }) }
  login (username: string, password: string): Promise<SessionView> { return this.call('POST', '/api/login', { username, password }) }
  logout (): Promise<SessionView> { return this.call('POST', '/api/logout') }

  network (): Promise<NetworkView> { return this.call('GET', '/api/network') }
  changeNetwork (change: NetworkChange): Promise<SessionView> { return this.call('PUT', '/api/network', change) }

  /** the newest page, or with `before` the one before that message */
  roomMessages (room: string, before?: string): Promise<MessagesPage & { room: string }> {
    return this.call('GET', `/api/rooms/${encodeURIComponent(room)}/messages${before ? '?before=' + encodeURIComponent(before) : ''}`)
  }

  sendRoom (room: string, text: string, clientId: string): Promise<SendResult> {
    return this.call('POST', `/api/rooms/${encodeURIComponent(room)}/messages`, { text, clientId })
  }

  /** the rooms that exist on the server, by name, after `after` */
  roomList (after?: string): Promise<RoomListView> { return this.call('GET', `/api/room-list${after ? '?after=' + encodeURIComponent(after) : ''}`) }

  join (room: string): Promise<{ rooms: string[] }> { return this.call('POST', `/api/rooms/${encodeURIComponent(room)}/join`) }

  conversation (user: string, before?: string): Promise<MessagesPage & { user: string }> {
    return this.call('GET', `/api/dms/${encodeURIComponent(user)}${before ? '?before=' + encodeURIComponent(before) : ''}`)
  }

  sendDm (user: string, text: string, clientId: string): Promise<SendResult> {
    return this.call('POST', `/api/dms/${encodeURIComponent(user)}`, { text, clientId })
  }

  retry (clientId: string): Promise<{ item: OutboxView }> { return this.call('POST', `/api/outbox/${encodeURIComponent(clientId)}/retry`) }
  discard (clientId: string): Promise<{ outbox: OutboxView[] }> { return this.call('POST', `/api/outbox/${encodeURIComponent(clientId)}/discard`) }

  whois (user: string): Promise<WhoisView> { return this.call('GET', `/api/users/${encodeURIComponent(user)}/whois`) }
  trust (user: string): Promise<WhoisView> { return this.call('POST', `/api/users/${encodeURIComponent(user)}/trust`) }
  verify (user: string): Promise<WhoisView> { return this.call('POST', `/api/users/${encodeURIComponent(user)}/verify`) }

  circuit (fresh: boolean): Promise<{ hops: HopView[] }> {
    return fresh ? this.call('POST', '/api/circuit/new') : this.call('GET', '/api/circuit')
  }

  events (after: number): Promise<EventPage> { return this.call('GET', `/api/events?after=${after}`) }
}
