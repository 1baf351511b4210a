import t from 'tap'
import { call, sealedDm, signUp, sleep, stack } from './helpers.js'
import { waitUntil } from '../../../helpers/wait.js'

t.test('send to a room, idempotently', async t => {
  const { gateway, messages } = await stack(t)
  const token = await signUp(gateway, 'alice')
  const first = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'm-1', text: 'hello' } })
  t.equal(first.status, 201)
  t.match(first.json.message, { from: 'alice', room: 'lobby', clientId: 'm-1', body: 'hello' })
  t.type(first.json.message.id, 'string')
  const retry = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'm-1', text: 'hello' } })
  t.equal(retry.status, 200)
  t.equal(retry.json.message.id, first.json.message.id, 'same message')
  t.equal(await messages.count(), 1, 'stored once')
  const reused = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'm-1', text: 'something else' } })
  t.equal(reused.status, 409)
  t.equal(reused.json.error.code, 'MM_ERR_CLIENT_ID_REUSED')
  t.equal(await messages.count(), 1)

  const page = await call(gateway, 'GET', '/v1/rooms/lobby/messages', { token })
  t.equal(page.status, 200)
  t.same(page.json.messages.map((m: any) => m.body), ['hello'])
  t.equal(page.json.cursor, first.json.message.id)
  t.equal(page.json.hasMore, false)
})

t.test('rooms exist from their first message; names are checked', async t => {
  const { gateway } = await stack(t)
  const token = await signUp(gateway, 'alice')
  const empty = await call(gateway, 'GET', '/v1/rooms/new-room/messages', { token })
  t.same(empty.json, { messages: [], cursor: null, hasMore: false })
  t.equal((await call(gateway, 'POST', '/v1/rooms/New-Room/messages', { token, body: { clientId: 'a', text: 'x' } })).json.message.room, 'new-room')
  t.equal((await call(gateway, 'GET', '/v1/rooms/new-room/messages', { token })).json.messages.length, 1)
  t.equal((await call(gateway, 'GET', '/v1/rooms/lobby/messages', { token })).json.messages.length, 0, 'rooms are separate')
  for (const room of ['a'.repeat(33), 'sp%20ace', 'd.ot', '%C3%A9']) {
    const res = await call(gateway, 'GET', `/v1/rooms/${room}/messages`, { token })
    t.ok(res.status === 400 || res.status === 404, `${room} -> ${res.status}`)
  }
  for (const text of ['', 'x'.repeat(4001), 5, null]) {
    const res = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'b', text } })
    t.equal(res.status, 400, `text ${JSON.stringify(text)?.slice(0, 12)}`)
  }
  t.equal((await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'c', text: '😀'.repeat(4000) } })).status, 201, '4000 emoji')
})

/** sends n room messages (client ids `${prefix}0`…) and returns their ids in order */
async function sendMany (gateway: Parameters<typeof call>[0], token: string, room: string, n: number, prefix = 'c'): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await call(gateway, 'POST', `/v1/rooms/${room}/messages`, { token, body: { clientId: `${prefix}${i}`, text: `n${i}` } })
    ids.push(res.json.message.id)
  }
  return ids
}

t.test('cursor pagination across pages', async t => {
  const { gateway } = await stack(t)
  const token = await signUp(gateway, 'alice')
  const sent = await sendMany(gateway, token, 'pages', 7)
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  for (;;) {
    const url: string = `/v1/rooms/pages/messages?limit=3${cursor === null ? '' : `&after=${cursor}`}`
    const res = await call(gateway, 'GET', url, { token })
    t.equal(res.status, 200)
    pages++
    seen.push(...res.json.messages.map((m: any) => m.id))
    t.equal(res.json.hasMore, seen.length < 7)
    cursor = res.json.cursor
    if (!res.json.hasMore) break
  }
  t.equal(pages, 3)
  t.same(seen, sent, 'every message once, in order')
  const tail = await call(gateway, 'GET', `/v1/rooms/pages/messages?after=${cursor}`, { token })
  t.same(tail.json, { messages: [], cursor, hasMore: false }, 'the cursor stays put at the end')
  t.equal((await call(gateway, 'GET', '/v1/rooms/pages/messages?limit=500', { token })).json.messages.length, 7, 'limit capped, not refused')
  for (const q of ['limit=abc', 'limit=-1', 'wait=x', 'after=' + encodeURIComponent('a b'), 'after=a&after=b']) {
    t.equal((await call(gateway, 'GET', `/v1/rooms/pages/messages?${q}`, { token })).status, 400, q)
  }
})

t.test('latest: the newest page, then follow it with after', async t => {
  const { gateway } = await stack(t)
  const token = await signUp(gateway, 'alice')
  const sent = await sendMany(gateway, token, 'tail', 7)
  const last = await call(gateway, 'GET', '/v1/rooms/tail/messages?latest=1&limit=3', { token })
  t.equal(last.status, 200)
  t.same(last.json.messages.map((m: any) => m.id), sent.slice(-3), 'the three newest, oldest first')
  t.equal(last.json.cursor, sent[6])
  t.equal(last.json.hasMore, true, 'older messages exist')
  const [next] = await sendMany(gateway, token, 'tail', 1, 'later')
  const followed = await call(gateway, 'GET', `/v1/rooms/tail/messages?after=${last.json.cursor}`, { token })
  t.same(followed.json.messages.map((m: any) => m.id), [next], 'after the newest page\'s cursor: only what came since')
  sent.push(next)
  const all = await call(gateway, 'GET', '/v1/rooms/tail/messages?latest=true&limit=50', { token })
  t.same(all.json.messages.map((m: any) => m.id), sent)
  t.equal(all.json.hasMore, false)
  const empty = await call(gateway, 'GET', '/v1/rooms/nobody-here/messages?latest=1', { token })
  t.same(empty.json, { messages: [], cursor: null, hasMore: false }, 'an empty room')
  const dm = await call(gateway, 'GET', '/v1/dms?latest=1&limit=5', { token })
  t.equal(dm.status, 200, 'DMs take latest too')
  for (const q of [`latest=1&after=${sent[0]}`, 'latest=1&wait=5', 'latest=yes']) {
    const res = await call(gateway, 'GET', `/v1/rooms/tail/messages?${q}`, { token })
    t.equal(res.status, 400, q)
    t.type(res.json?.error?.message, 'string')
  }
})

t.test('before: older history, page by page back to the first message', async t => {
  const { gateway } = await stack(t)
  const token = await signUp(gateway, 'alice')
  const sent = await sendMany(gateway, token, 'history', 12)
  await sendMany(gateway, token, 'elsewhere', 3, 'e')
  const newest = await call(gateway, 'GET', '/v1/rooms/history/messages?latest=1&limit=5', { token })
  const seen = newest.json.messages.map((m: any) => m.id)
  let before = seen[0]
  const pages: number[] = []
  for (let more = newest.json.hasMore; more;) {
    const res = await call(gateway, 'GET', `/v1/rooms/history/messages?before=${before}&limit=5`, { token })
    t.equal(res.status, 200)
    const ids = res.json.messages.map((m: any) => m.id)
    pages.push(ids.length)
    t.equal(res.json.cursor, ids[0], "an older page's cursor is its oldest message: the next before")
    seen.unshift(...ids)
    before = res.json.cursor
    more = res.json.hasMore
  }
  t.same(pages, [5, 2], 'two older pages, the last one short')
  t.same(seen, sent, 'every message of the room once, oldest first')
  t.same((await call(gateway, 'GET', `/v1/rooms/history/messages?before=${sent[0]}`, { token })).json, { messages: [], cursor: null, hasMore: false }, 'nothing before the first')
  t.equal((await call(gateway, 'GET', `/v1/rooms/history/messages?before=${sent[11]}&limit=500`, { token })).json.messages.length, 11, 'limit capped at 200, not refused')
  t.equal((await call(gateway, 'GET', `/v1/dms?before=${sent[11]}&limit=5`, { token })).status, 200, 'DMs take before too')
  for (const q of [`before=${sent[5]}&after=${sent[1]}`, `before=${sent[5]}&wait=3`, `before=${sent[5]}&latest=1`]) {
    const res = await call(gateway, 'GET', `/v1/rooms/history/messages?${q}`, { token })
    t.equal(res.status, 400, q)
    t.equal(res.json.error.code, 'MM_ERR_BAD_QUERY', q)
  }
  for (const q of ['before=' + encodeURIComponent('a b'), 'before=', 'before=' + 'x'.repeat(65), 'before=a&before=b']) {
    const res = await call(gateway, 'GET', `/v1/rooms/history/messages?${q}`, { token })
    t.equal(res.status, 400, q)
    t.equal(res.json.error.code, 'MM_ERR_VALIDATION', q)
  }
})

t.test('GET /v1/rooms lists the rooms that exist: names, counts, last activity, paged', async t => {
  const { gateway } = await stack(t)
  const alice = await signUp(gateway, 'alice')
  const bob = await signUp(gateway, 'bob')
  t.same((await call(gateway, 'GET', '/v1/rooms', { token: alice })).json, { rooms: [], cursor: null, hasMore: false }, 'no rooms before the first message')
  t.equal((await call(gateway, 'GET', '/v1/rooms')).status, 401, 'only for a signed-in caller')
  const rooms = ['lobby', 'b-side', 'a_room', 'zeta', 'mid9']
  const last: Record<string, any> = {}
  for (let i = 0; i < 13; i++) {
    const room = rooms[i % rooms.length]
    const res = await call(gateway, 'POST', `/v1/rooms/${room}/messages`, { token: i % 2 ? alice : bob, body: { clientId: `r${i}`, text: `m${i}` } })
    last[room] = res.json.message
  }
  t.equal((await sealedDm(gateway, alice, 'alice')).status, 201, 'a DM is no room')
  const all = await call(gateway, 'GET', '/v1/rooms', { token: alice })
  t.equal(all.status, 200)
  t.same(all.json.rooms, ['a_room', 'b-side', 'lobby', 'mid9', 'zeta'].map(name => ({ name, messages: name === 'lobby' || name === 'b-side' || name === 'a_room' ? 3 : 2, lastAt: last[name].sentAt })), 'by name; counts and the time of the newest message')
  t.same(Object.keys(all.json.rooms[0]).sort(), ['lastAt', 'messages', 'name'], 'nothing else: no senders, no members, no ids')
  t.notOk(all.raw.includes('alice') || all.raw.includes('bob'), 'no user name anywhere in the answer')
  t.equal(all.json.hasMore, false)
  const names: string[] = []
  let cursor: string | null = null
  for (let n = 0; n < 10; n++) {
    const res: any = await call(gateway, 'GET', `/v1/rooms?limit=2${cursor ? `&after=${cursor}` : ''}`, { token: bob })
    names.push(...res.json.rooms.map((r: any) => r.name))
    t.ok(res.json.rooms.length <= 2, 'at most limit')
    cursor = res.json.cursor
    if (!res.json.hasMore) break
  }
  t.same(names, ['a_room', 'b-side', 'lobby', 'mid9', 'zeta'], 'pages of two: every room once')
  t.same((await call(gateway, 'GET', '/v1/rooms?after=Lobby', { token: bob })).json.rooms.map((r: any) => r.name), ['mid9', 'zeta'], 'after is a room name, any case')
  t.equal((await call(gateway, 'GET', '/v1/rooms?limit=9999', { token: bob })).json.rooms.length, 5, 'limit capped at 200, not refused')
  for (const q of ['limit=0', 'limit=-1', 'limit=abc', 'limit=10000', 'after=' + encodeURIComponent('bad room!'), 'after=' + 'a'.repeat(33), 'after=a&after=b', 'limit=1&limit=2']) {
    const res = await call(gateway, 'GET', `/v1/rooms?${q}`, { token: bob })
    t.equal(res.status, 400, q)
    t.equal(res.json.error.code, 'MM_ERR_VALIDATION', q)
  }
})

t.test('long-poll wakes up on a new message', async t => {
  const { gateway, services } = await stack(t)
  const parked = () => services.stats().longPollsWaiting
  const alice = await signUp(gateway, 'alice')
  const bob = await signUp(gateway, 'bob')
  const start = Date.now()
  const waiting = call(gateway, 'GET', '/v1/rooms/lobby/messages?wait=10', { token: alice })
  t.ok(await waitUntil(() => parked() === 1), 'the long-poll is parked')
  await call(gateway, 'POST', '/v1/rooms/elsewhere/messages', { token: bob, body: { clientId: 'x', text: 'other room' } })
  t.equal(parked(), 1, 'a message to another room left it waiting')
  const sent = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token: bob, body: { clientId: 'y', text: 'wake up' } })
  const res = await waiting
  const took = Date.now() - start
  t.equal(res.status, 200)
  t.same(res.json.messages.map((m: any) => m.id), [sent.json.message.id])
  t.ok(took < 2000, `answered in ${took} ms`)

  // a sealed DM wakes its recipient (the server does not know its sender)
  const dmWait = call(gateway, 'GET', `/v1/dms?wait=10`, { token: alice })
  t.ok(await waitUntil(() => parked() === 1), 'the DM long-poll is parked')
  t.equal((await sealedDm(gateway, alice, 'alice')).status, 201)
  const dm = await dmWait
  t.equal(dm.json.messages[0]?.to, 'alice')
})

t.test('long-poll times out empty and frees its slot', async t => {
  const { gateway, services } = await stack(t, { maxLongPolls: 2 })
  const token = await signUp(gateway, 'alice')
  const latest = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'a', text: 'old' } })
  const start = Date.now()
  const a = call(gateway, 'GET', `/v1/rooms/lobby/messages?wait=1&after=${latest.json.message.id}`, { token })
  const b = call(gateway, 'GET', '/v1/dms?wait=1', { token })
  t.ok(await waitUntil(() => services.stats().longPollsWaiting === 2), 'both are parked')
  const full = await call(gateway, 'GET', '/v1/dms?wait=1', { token })
  t.equal(full.status, 503, 'bounded')
  t.equal(full.json.error.code, 'MM_ERR_BUSY')
  const [ra, rb] = await Promise.all([a, b])
  const took = Date.now() - start
  t.ok(took >= 950 && took < 3000, `waited ${took} ms`)
  t.same(ra.json, { messages: [], cursor: latest.json.message.id, hasMore: false })
  t.same(rb.json.messages, [])
  t.equal((await call(gateway, 'GET', '/v1/dms?wait=1', { token })).status, 200, 'slots are free again')
  const quick = await call(gateway, 'GET', '/v1/rooms/lobby/messages?wait=5', { token })
  t.equal(quick.json.messages.length, 1, 'no waiting when something is already there')
})

t.test('direct messages: only sealed ones, to users who exist, seen by their recipient alone', async t => {
  const { gateway, messages } = await stack(t)
  const alice = await signUp(gateway, 'alice')
  const bob = await signUp(gateway, 'bob')
  const eve = await signUp(gateway, 'eve')
  // the identified route that stored `from` is gone (issue 16): a JWT names no DM's sender
  const identified = await call(gateway, 'POST', '/v1/dms', { token: alice, body: { to: 'bob', clientId: 'k1', body: 'Y3Q' } })
  t.same([identified.status, identified.json?.error?.code], [404, 'MM_ERR_NOT_FOUND'], 'POST /v1/dms is no route')
  const sent = await sealedDm(gateway, bob, 'BOB')
  t.equal(sent.status, 201, sent.raw)
  const unknown = await call(gateway, 'POST', '/v1/dms/sealed', { body: { to: 'nobody', envelope: 'A'.repeat(1500), deliveryToken: 'A'.repeat(22) } })
  t.equal(unknown.status, 400, 'a length no envelope has: refused before any lookup')
  const ghost = await sealedDm(gateway, bob, 'nobody')
  t.same([ghost.status, ghost.json?.error?.code], [404, 'MM_ERR_USER_UNKNOWN'])
  const odd = await sealedDm(gateway, bob, 'bob', { bytes: 1000 })
  t.same([odd.status, odd.json?.error?.code], [400, 'MM_ERR_SEALED'], 'only padded lengths')
  const inbox = (await call(gateway, 'GET', '/v1/dms', { token: bob })).json.messages
  t.equal(inbox.length, 1)
  t.equal(inbox[0].from, '', 'stored with no sender')
  t.equal((await call(gateway, 'GET', '/v1/dms', { token: alice })).json.messages.length, 0)
  t.equal((await call(gateway, 'GET', '/v1/dms', { token: eve })).json.messages.length, 0)
  t.equal(await messages.count(), 1)
  // eve could once read `{ users: 3, messages: 1 }` here and so learn that a DM was sent: no live counters in the API (issue 14)
  const stats = await call(gateway, 'GET', '/v1/stats', { token: eve })
  t.same([stats.status, stats.json.error.code], [404, 'MM_ERR_NOT_FOUND'], 'there is no /v1/stats')
})

t.test('messages expire after the TTL', async t => {
  const { gateway, messages } = await stack(t, { ttlMs: 400 })
  const token = await signUp(gateway, 'alice')
  const sent = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'a', text: 'brief' } })
  t.equal(sent.json.message.expiresAt, sent.json.message.sentAt + 400)
  t.equal((await call(gateway, 'GET', '/v1/rooms/lobby/messages', { token })).json.messages.length, 1)
  await sleep(600)
  t.same((await call(gateway, 'GET', '/v1/rooms/lobby/messages', { token })).json.messages, [], 'never listed once expired')
  // the sweeper runs every max(ttl, 1 s)
  t.ok(await waitUntil(async () => await messages.count() === 0, { timeoutMs: 3000 }), 'deleted from the store')
})
