// The messaging service (docs/ARCHITECTURE.md §8) as a route table (router.ts): rooms (`lobby` and
// any room named by its first message), end-to-end encrypted DMs stored as opaque
// ciphertext (P8), cursor pagination, long-poll wake-ups from MessageStore.onMessage,
// idempotent sends by client id, and an optional TTL. The caller is the user the gateway
// vouches for. Leaves out room membership and moderation.

import { MESSAGE_MAX_CHARS } from '../../../limits.js'
import { MarshmelloError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import type { MessageQuery, MessageStore, NewMessage, StoredMessage, UserStore } from '../../../storage/types.js'
import { systemClock, type Clock } from '../../common/clock.js'
import { DEFAULT_DM_RETENTION_MS, sealedRoutes, type SealedInit } from './sealed.js'
import { requireCaller } from './http.js'
import { LongPollHub, waitFor } from './long-poll.js'
import type { Answer, Route } from './router.js'
import { CLIENT_ID, MESSAGE_ID, ROOM_INPUT, errorResponses, isWellFormedText, messageSchema, pageSchema } from './schemas.js'

export interface MessagesServiceOptions {
  messages: MessageStore
  /** messages expire this long after they are sent; default: kept */
  ttlMs?: number
  /** the longest a GET may wait for news; default 25 s */
  longPollMaxMs?: number
  /** concurrent waiting GETs before 503; default 10,000 */
  maxLongPolls?: number
  logger?: Logger
  now?: () => number
  /** DMs are deleted this long after they arrive unless acknowledged earlier; default 30 days */
  dmRetentionMs?: number
  /** sealed sender (sealed.ts): needs the user store for delivery settings; absent, its routes answer 503 */
  sealed?: SealedInit & { users: UserStore }
  /** time for the sweep and the sealed routes; default the system clock */
  clock?: Clock
}

/** the one message size limit (src/limits.ts), which both clients check before sending */
export const MAX_TEXT_CHARS = MESSAGE_MAX_CHARS
const DEFAULT_LIMIT = 50
const MAX_LIMIT = 200

const sendResponse = {
  type: 'object',
  properties: { message: messageSchema },
  required: ['message'],
} as const
const sendResponses = { 200: sendResponse, 201: sendResponse, ...errorResponses }

const pageQuery = {
  type: 'object',
  properties: {
    after: { type: 'string', pattern: MESSAGE_ID },
    /** older history: the newest page of the messages before this id; not with after, wait or latest */
    before: { type: 'string', pattern: MESSAGE_ID },
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    wait: { type: 'string', pattern: '^[0-9]{1,4}$' },
    /** the newest page instead of the oldest (joining a room); not with after or wait */
    latest: { type: 'string', enum: ['1', 'true'] },
  },
} as const

/** GET /v1/rooms: the room list, by name, paged by the last name of the previous page */
const ROOMS_DEFAULT_LIMIT = 50
const ROOMS_MAX_LIMIT = 200
const roomsQuery = {
  type: 'object',
  properties: {
    after: { type: 'string', pattern: ROOM_INPUT },
    /** 1…9999, capped at ROOMS_MAX_LIMIT (as a message page's limit is) */
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
  },
} as const
const roomsResponse = {
  type: 'object',
  properties: {
    rooms: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, messages: { type: 'number' }, lastAt: { type: 'number' } },
        required: ['name', 'messages', 'lastAt'],
      },
    },
    cursor: { type: ['string', 'null'] },
    hasMore: { type: 'boolean' },
  },
  required: ['rooms', 'cursor', 'hasMore'],
} as const

const roomParams = {
  type: 'object',
  properties: { room: { type: 'string', pattern: ROOM_INPUT } },
  required: ['room'],
} as const

/** Thrown when text or a DM body is not well-formed Unicode (a lone surrogate). */
const badText = (what: string) => new MarshmelloError('MM_ERR_BAD_TEXT', `${what} must be well-formed Unicode`)

function view (m: StoredMessage) {
  const out: Record<string, unknown> = { id: m.id, from: m.from, clientId: m.clientId, body: m.body, sentAt: m.sentAt }
  if (m.room !== undefined) out.room = m.room
  if (m.to !== undefined) out.to = m.to
  if (m.expiresAt !== undefined) out.expiresAt = m.expiresAt
  return out
}

export interface ServiceRoutes {
  routes: Route[]
  /** answers every waiting long-poll with what it has, stops timers and the store subscription */
  close (): void
  /** exact counters for the operator (`/metrics`, PROTOCOL §8), never for a public endpoint */
  stats?: () => Record<string, number>
}

export function messagesRoutes (opts: MessagesServiceOptions): ServiceRoutes {
  const store = opts.messages
  const logger = opts.logger ?? silentLogger
  const clock = opts.clock ?? systemClock
  const now = opts.now ?? (() => clock.now())
  const retentionMs = opts.dmRetentionMs ?? DEFAULT_DM_RETENTION_MS
  if (!(retentionMs > 0)) throw new MarshmelloError('MM_ERR_CONFIG', 'dmRetentionMs must be a positive number')
  const longPollMaxMs = opts.longPollMaxMs ?? 25_000
  const hub = new LongPollHub(opts.maxLongPolls ?? 10_000)

  const unsubscribe = store.onMessage(m => {
    if (m.room !== undefined) hub.notify(`r:${m.room}`)
    if (m.to !== undefined) { hub.notify(`d:${m.to}`); hub.notify(`d:${m.from}`) }
  })
  if (opts.ttlMs !== undefined && !(opts.ttlMs > 0)) throw new MarshmelloError('MM_ERR_CONFIG', 'ttlMs must be a positive number')
  // every DM expires after the retention period (PROTOCOL §12.6), so the sweep always runs:
  // at least once a minute, more often for a short TTL
  const sweeper = clock.setInterval(() => {
    store.deleteExpired(now()).catch(err => logger.warn('deleting expired messages failed', { err }))
  }, Math.min(Math.max(Math.min(opts.ttlMs ?? retentionMs, retentionMs), 1000), 60_000))
  const sealed = opts.sealed === undefined ? undefined : sealedRoutes(opts.sealed, { users: opts.sealed.users, messages: store, clock, retentionMs })
  const close = () => { hub.wakeAll(); unsubscribe(); sweeper.cancel() }
  // long-polls parked now (exact, for the operator's /metrics only: PROTOCOL §8)
  const parked = () => ({ longPollsWaiting: hub.active })

  async function send (msg: Omit<NewMessage, 'sentAt' | 'expiresAt'>): Promise<Answer> {
    const sentAt = now()
    const ttl = msg.to !== undefined ? Math.min(opts.ttlMs ?? retentionMs, retentionMs) : opts.ttlMs
    const full: NewMessage = ttl === undefined ? { ...msg, sentAt } : { ...msg, sentAt, expiresAt: sentAt + ttl }
    const { message, created } = await store.put(full)
    if (!created && (message.room !== msg.room || message.to !== msg.to || message.body !== msg.body)) {
      /** Thrown when a client id is reused for a different message. */
      throw new MarshmelloError('MM_ERR_CLIENT_ID_REUSED', 'this clientId was already used for another message')
    }
    return { status: created ? 201 : 200, body: { message: view(message) } }
  }

  /** one page after `after`; with wait>0 and nothing new, waits for news on `keys` */
  async function page (q: Omit<MessageQuery, 'limit' | 'newest' | 'before'>, raw: { limit?: string, wait?: string, latest?: string, before?: string }, keys: string[], signal: AbortSignal): Promise<Answer> {
    const limit = Math.min(Math.max(Number(raw.limit ?? DEFAULT_LIMIT), 1), MAX_LIMIT)
    const waitMs = Math.min(Number(raw.wait ?? 0) * 1000, longPollMaxMs)
    if (raw.before !== undefined) {
      if (q.after !== undefined || waitMs > 0 || raw.latest !== undefined) {
        /** Thrown when before is combined with after, wait or latest. */
        throw new MarshmelloError('MM_ERR_BAD_QUERY', 'before reads older history: do not combine it with after, wait or latest')
      }
      const t = now()
      // one more than asked, so hasMore says whether still older messages exist
      const found = (await store.list({ ...q, before: raw.before, limit: limit + 1 })).filter(m => m.expiresAt === undefined || m.expiresAt > t)
      const messages = found.slice(-limit)
      // the cursor of an older page is its oldest message: the next `before`
      return { status: 200, body: { messages: messages.map(view), cursor: messages[0]?.id ?? null, hasMore: found.length > limit } }
    }
    if (raw.latest !== undefined) {
      if (q.after !== undefined || waitMs > 0) {
        /** Thrown when latest is combined with after or wait. */
        throw new MarshmelloError('MM_ERR_BAD_QUERY', 'latest reads the newest page: do not combine it with after or wait')
      }
      const t = now()
      // one more than asked, so hasMore says whether older messages exist
      const found = (await store.list({ ...q, newest: true, limit: limit + 1 })).filter(m => m.expiresAt === undefined || m.expiresAt > t)
      const messages = found.slice(-limit)
      return { status: 200, body: { messages: messages.map(view), cursor: messages.at(-1)?.id ?? null, hasMore: found.length > limit } }
    }
    const read = async () => {
      const t = now()
      const found = (await store.list({ ...q, limit: limit + 1 })).filter(m => m.expiresAt === undefined || m.expiresAt > t)
      const messages = found.slice(0, limit)
      return { messages: messages.map(view), cursor: messages.at(-1)?.id ?? q.after ?? null, hasMore: found.length > limit }
    }
    if (waitMs <= 0) return { status: 200, body: await read() }
    const waiter = hub.wait(keys) // before the first read: nothing can slip in between
    try {
      const first = await read()
      if (first.messages.length > 0 || signal.aborted) return { status: 200, body: first }
      await waitFor(waiter.woken, waitMs, signal)
      if (signal.aborted) return { status: 200, body: first } // nobody is listening any more
      return { status: 200, body: await read() }
    } finally {
      waiter.cancel()
    }
  }

  const pageResponses = { 200: pageSchema, ...errorResponses }
  type PageQuery = { after?: string, before?: string, limit?: string, wait?: string, latest?: string }
  const routes: Route[] = [
    {
      // which rooms exist (hold a message that has not expired): names, message counts and
      // the time of the newest message, all of which any reader of the room sees anyway;
      // never who wrote or who reads (PROTOCOL §6)
      method: 'GET',
      url: '/v1/rooms',
      schema: { querystring: roomsQuery, response: { 200: roomsResponse, ...errorResponses } },
      async handler ({ query, call }) {
        requireCaller(call)
        const raw = query as { after?: string, limit?: string }
        const limit = Math.min(Number(raw.limit ?? ROOMS_DEFAULT_LIMIT), ROOMS_MAX_LIMIT)
        const found = await store.rooms({ after: raw.after?.toLowerCase(), limit: limit + 1 })
        const rooms = found.slice(0, limit).map(r => ({ name: r.name, messages: r.messages, lastAt: r.lastAt }))
        return { status: 200, body: { rooms, cursor: rooms.at(-1)?.name ?? null, hasMore: found.length > limit } }
      },
    },
    {
      method: 'POST',
      url: '/v1/rooms/:room/messages',
      schema: {
        params: roomParams,
        body: {
          type: 'object',
          properties: {
            clientId: { type: 'string', pattern: CLIENT_ID },
            text: { type: 'string', minLength: 1, maxLength: MAX_TEXT_CHARS },
          },
          required: ['clientId', 'text'],
        },
        response: sendResponses,
      },
      async handler ({ params, body, call }) {
        const from = requireCaller(call)
        const { clientId, text } = body as { clientId: string, text: string }
        if (!isWellFormedText(text)) throw badText('text')
        return send({ from, room: params.room.toLowerCase(), clientId, body: text })
      },
    },
    {
      method: 'GET',
      url: '/v1/rooms/:room/messages',
      schema: { params: roomParams, querystring: pageQuery, response: pageResponses },
      async handler ({ params, query, call, signal }) {
        requireCaller(call)
        const room = params.room.toLowerCase()
        return page({ room, after: query.after }, query as PageQuery, [`r:${room}`], signal)
      },
    },
    {
      method: 'GET',
      url: '/v1/dms',
      schema: { querystring: pageQuery, response: pageResponses },
      async handler ({ query, call, signal }) {
        const me = requireCaller(call)
        return page({ dmUser: me, after: query.after }, query as PageQuery, [`d:${me}`], signal)
      },
    },
  ]
  if (sealed !== undefined) {
    routes.push(...sealed.routes)
  } else {
    // a messages service running apart has no user store and no trust root: say so, not 404
    for (const [method, url] of [['POST', '/v1/dms/certificate'], ['GET', '/v1/dms/settings'], ['PUT', '/v1/dms/settings'], ['GET', '/v1/dms/token-key'], ['POST', '/v1/dms/tokens'], ['POST', '/v1/dms/sealed'], ['POST', '/v1/dms/ack']] as const) {
      routes.push({ method, url, handler: async () => { throw new MarshmelloError('MM_ERR_SEALED_UNAVAILABLE', 'this server is not set up for sealed sender') } })
    }
  }
  return { routes, close, stats: () => ({ ...sealed?.stats?.(), ...parked() }) }
}
