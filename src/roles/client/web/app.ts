// The local web UI as a fastify app (apart from its listener, so tests can use
// inject): the page, its script and stylesheet, and the JSON API the page calls
// (account, network settings, rooms joined and on the server, DMs and their older pages, the outbox of sends
// that wait for the network, contacts' keys, the circuit, events).
// Every request passes security.ts first; every error becomes {error:{code,message}}.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { MarshmelloError } from '../../../errors.js'
import { ROOM_INPUT, ROOM_RULE, USERNAME_INPUT, USERNAME_RULE, isRoomName, isUsername } from '../../../names.js'
import { installErrorHandler } from '../../common/http-errors.js'
import { newClientId } from '../chat-client.js'
import { guardHook } from './security.js'
import type { FirstTry, WebSession } from './session.js'
import { MESSAGE_MAX_CHARS } from './ui/limits.js'
import type { NetworkChange, RoomListView, SessionView, Target } from './wire.js'

/** rooms of the server the sidebar lists per page */
const ROOM_LIST_PAGE = 50

export interface WebAssets { html: string, css: string, js: string }

export interface WebAppInit {
  token: string
  port: () => number
  /** the longest GET /api/events waits for news; default 25 s */
  eventWaitMs?: number
}

/** a client message id, as the server's messages API takes it (PROTOCOL §6) */
const CLIENT_ID = '^[A-Za-z0-9_.:-]{1,64}$'
const USERNAME = { type: 'string', pattern: USERNAME_INPUT }
const roomParams = { type: 'object', properties: { room: { type: 'string', pattern: ROOM_INPUT } }, required: ['room'] }
const userParams = { type: 'object', properties: { user: USERNAME }, required: ['user'] }
const credentials = {
  type: 'object',
  additionalProperties: false,
  properties: { username: USERNAME, password: { type: 'string', minLength: 1, maxLength: 1024 } },
  required: ['username', 'password'],
}
// the text's limit is checked by the session (MM_ERR_BAD_TEXT, in plain words); the schema only bounds it
const textBody = {
  type: 'object',
  additionalProperties: false,
  properties: { text: { type: 'string', minLength: 1, maxLength: MESSAGE_MAX_CHARS * 4 }, clientId: { type: 'string', pattern: CLIENT_ID } },
  required: ['text'],
}
const pageQuery = { type: 'object', properties: { before: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' } } }
const clientIdParams = { type: 'object', properties: { clientId: { type: 'string', pattern: CLIENT_ID } }, required: ['clientId'] }
const emptyBody = { type: 'object', additionalProperties: false, properties: {} }
const networkBody = {
  oneOf: [
    { type: 'object', additionalProperties: false, properties: { devnet: { type: 'string', minLength: 1, maxLength: 4096 } }, required: ['devnet'] },
    { type: 'object', additionalProperties: false, properties: { relay: { type: 'string', minLength: 1, maxLength: 2048 }, directoryKey: { type: 'string', pattern: '^[0-9a-fA-F]{64}(,[0-9a-fA-F]{64}){0,15}$' } }, required: ['relay', 'directoryKey'] },
  ],
}

const lower = (s: string) => s.toLowerCase()

/** 201 with the stored message, or 202 with the queued item while the network is down */
const sent = (reply: FastifyReply, r: FirstTry) =>
  r.outcome === 'sent' && r.item.message ? reply.code(201).send({ message: r.item.message }) : reply.code(202).send({ pending: r.item })

export async function buildWebApp (init: WebAppInit, session: WebSession, assets: WebAssets): Promise<FastifyInstance> {
  const send = (target: Target, body: unknown) => {
    const b = body as { text: string, clientId?: string }
    return session.send(target, b.text, b.clientId ?? newClientId())
  }
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, ajv: { customOptions: { removeAdditional: false } } })
  app.addHook('onRequest', guardHook({ token: init.token, port: init.port }))

  // the one error handler (src/roles/common/http-errors.ts): a key change keeps its
  // username and fingerprints through the error's details
  installErrorHandler(app)

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(assets.html))
  app.get('/app.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(assets.js))
  app.get('/app.css', async (_req, reply) => reply.type('text/css; charset=utf-8').send(assets.css))

  const sessionView = async (): Promise<SessionView> => ({
    loggedIn: session.username !== null,
    username: session.username,
    rooms: session.username ? session.joinedRooms() : [],
    dmPeers: session.username ? await session.dmPeers() : [],
    outbox: session.username ? session.pending() : [],
    online: session.online,
    network: session.describeNetwork(),
    lastEvent: session.events.last,
  })

  app.get('/api/session', async () => sessionView())
  app.post('/api/signup', { schema: { body: credentials } }, async (req) => {
    const b = req.body as { username: string, password: string }
    await session.signup(lower(b.username), b.password)
    return sessionView()
  })
  app.post('/api/login', { schema: { body: credentials } }, async (req) => {
    const b = req.body as { username: string, password: string }
    await session.login(lower(b.username), b.password)
    return sessionView()
  })
  app.post('/api/logout', { schema: { body: emptyBody } }, async () => {
    await session.logout()
    return sessionView()
  })

  app.get('/api/network', async () => session.describeNetwork())
  app.put('/api/network', { schema: { body: networkBody } }, async (req) => {
    await session.changeNetwork(req.body as NetworkChange)
    return sessionView()
  })

  app.get('/api/rooms', async () => ({ rooms: session.joinedRooms() }))
  app.get('/api/room-list', { schema: { querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'string', pattern: ROOM_INPUT } } } } }, async (req): Promise<RoomListView> => {
    const after = (req.query as { after?: string }).after
    return await session.me().client.listRooms({ after: after === undefined ? undefined : lower(after), limit: ROOM_LIST_PAGE })
  })
  app.get('/api/rooms/:room/messages', { schema: { params: roomParams, querystring: pageQuery } }, async (req) => {
    const room = lower((req.params as { room: string }).room)
    return { room, ...(await session.roomMessages(room, (req.query as { before?: string }).before)) }
  })
  app.post('/api/rooms/:room/messages', { schema: { params: roomParams, body: textBody } }, async (req, reply) => {
    const room = lower((req.params as { room: string }).room)
    if (!isRoomName(room)) throw new MarshmelloError('MM_ERR_BAD_ROOM', ROOM_RULE)
    return sent(reply, await send({ kind: 'room', name: room }, req.body))
  })
  app.post('/api/rooms/:room/join', { schema: { params: roomParams, body: emptyBody } }, async (req) => {
    const room = lower((req.params as { room: string }).room)
    if (!isRoomName(room)) throw new MarshmelloError('MM_ERR_BAD_ROOM', ROOM_RULE)
    await session.join(room)
    return { rooms: session.joinedRooms() }
  })
  app.post('/api/rooms/:room/leave', { schema: { params: roomParams, body: emptyBody } }, async (req) => {
    const room = lower((req.params as { room: string }).room)
    session.me()
    if (room === 'lobby') throw new MarshmelloError('MM_ERR_BAD_ROOM', 'the lobby cannot be left')
    await session.leave(room)
    return { rooms: session.joinedRooms() }
  })

  app.get('/api/dms/:user', { schema: { params: userParams, querystring: pageQuery } }, async (req) => {
    const user = lower((req.params as { user: string }).user)
    if (!isUsername(user)) throw new MarshmelloError('MM_ERR_BAD_USER', USERNAME_RULE)
    return { user, ...(await session.conversation(user, (req.query as { before?: string }).before)) }
  })
  app.post('/api/dms/:user', { schema: { params: userParams, body: textBody } }, async (req, reply) => {
    const user = lower((req.params as { user: string }).user)
    if (!isUsername(user)) throw new MarshmelloError('MM_ERR_BAD_USER', USERNAME_RULE)
    return sent(reply, await send({ kind: 'dm', name: user }, req.body))
  })

  app.get('/api/outbox', async () => ({ outbox: session.pending() }))
  app.post('/api/outbox/:clientId/retry', { schema: { params: clientIdParams, body: emptyBody } }, async (req) => {
    return { item: session.retry((req.params as { clientId: string }).clientId) }
  })
  app.post('/api/outbox/:clientId/discard', { schema: { params: clientIdParams, body: emptyBody } }, async (req) => {
    session.discard((req.params as { clientId: string }).clientId)
    return { outbox: session.pending() }
  })
  app.get('/api/users/:user/whois', { schema: { params: userParams } }, async (req) => {
    const user = lower((req.params as { user: string }).user)
    // looked up quietly (a circuit of its own, no token), so a changed key still raises the banner
    return session.me().client.whois(user)
  })
  app.post('/api/users/:user/verify', { schema: { params: userParams, body: emptyBody } }, async (req) => {
    const user = lower((req.params as { user: string }).user)
    return session.me().client.verify(user)
  })
  app.post('/api/users/:user/trust', { schema: { params: userParams, body: emptyBody } }, async (req) => {
    const user = lower((req.params as { user: string }).user)
    const fingerprint = await session.me().client.trust(user)
    return { username: user, fingerprint, status: 'same' }
  })

  app.get('/api/circuit', async () => ({ hops: await session.circuit(false) }))
  app.post('/api/circuit/new', { schema: { body: emptyBody } }, async () => ({ hops: await session.circuit(true) }))

  app.get('/api/events', {
    schema: { querystring: { type: 'object', properties: { after: { type: 'string', pattern: '^[0-9]{1,12}$' } } } },
  }, async (req, reply) => {
    const after = Number((req.query as { after?: string }).after ?? 0)
    const aborted = new AbortController()
    const onClose = () => { if (!reply.raw.writableEnded) aborted.abort() }
    reply.raw.on('close', onClose)
    try {
      return await session.events.since(after, init.eventWaitMs ?? 25_000, aborted.signal)
    } finally {
      reply.raw.off('close', onClose)
    }
  })

  return app
}
