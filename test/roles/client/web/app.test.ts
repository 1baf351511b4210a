// The web UI app without a network (fastify inject): the guard (token, Host,
// Origin, JSON-only writes), the security headers, JSON errors for bad input and
// for calls before login, the event feed's long-poll, and that a DM which failed
// verification never carries text to the page.
import t from 'tap'
import { MarshmelloError } from '../../../../src/errors.js'
import { buildWebApp } from '../../../../src/roles/client/web/app.js'
import { EventFeed } from '../../../../src/roles/client/web/events.js'
import { newToken, tokenMatches } from '../../../../src/roles/client/web/security.js'
import { WebSession, view } from '../../../../src/roles/client/web/session.js'

const PORT = 4567
const HOST = `127.0.0.1:${PORT}`

async function app () {
  const token = newToken()
  const session = new WebSession({ rotate: 600, verbose: false }, {
    resolveNetwork: async () => { throw new MarshmelloError('MM_ERR_CONFIG', 'no network configured') },
    openClient: async () => { throw new Error('not reached') },
    probeNetwork: async () => { throw new MarshmelloError('MM_ERR_NO_CONSENSUS', 'no relay answered') },
  })
  await session.start()
  const a = await buildWebApp({ token, port: () => PORT, eventWaitMs: 200 }, session, { html: '<!doctype html><p>ui</p>', css: 'p{}', js: '1' })
  t.teardown(async () => { await session.close(); await a.close() })
  return { a, token, session }
}

t.test('tokens: 43 base64url characters, compared by digest', async (t) => {
  const k = newToken()
  t.match(k, /^[A-Za-z0-9_-]{43}$/)
  t.not(newToken(), k)
  t.ok(tokenMatches(k, k))
  t.notOk(tokenMatches(k, k.slice(0, -1)))
  t.notOk(tokenMatches(k, undefined))
  t.notOk(tokenMatches(k, [k]))
})

t.test('guard and headers', async (t) => {
  const { a, token } = await app()
  const get = (url: string, headers: Record<string, string>) => a.inject({ method: 'GET', url, headers })
  const ok = await get('/api/session', { host: HOST, 'x-marshmello-token': token })
  t.equal(ok.statusCode, 200)
  t.same(ok.json().network.configured, false, 'no network yet: the page opens the settings')
  t.equal(ok.headers['cache-control'], 'no-store')
  t.match(String(ok.headers['content-security-policy']), /connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'/)

  for (const [why, headers, code] of [
    ['no token', { host: HOST }, 'MM_ERR_WEB_TOKEN'],
    ['wrong token', { host: HOST, 'x-marshmello-token': newToken() }, 'MM_ERR_WEB_TOKEN'],
    ['foreign Host', { host: `evil.example:${PORT}`, 'x-marshmello-token': token }, 'MM_ERR_WEB_HOST'],
    ['localhost Host', { host: `localhost:${PORT}`, 'x-marshmello-token': token }, 'MM_ERR_WEB_HOST'],
    ['foreign Origin', { host: HOST, origin: 'http://evil.example', 'x-marshmello-token': token }, 'MM_ERR_WEB_ORIGIN'],
    ['null Origin', { host: HOST, origin: 'null', 'x-marshmello-token': token }, 'MM_ERR_WEB_ORIGIN'],
  ] as const) {
    const r = await get('/api/session', headers)
    t.equal(r.statusCode, 403, why)
    t.equal(r.json().error.code, code, why)
    t.equal(r.headers['x-content-type-options'], 'nosniff', `${why}: headers on refusals too`)
  }
  const page = await get('/', { host: HOST })
  t.equal(page.statusCode, 200, 'the page needs no token')
  t.match(String(page.headers['content-type']), /^text\/html/)
  t.equal((await get('/', { host: `evil.example:${PORT}` })).statusCode, 403, 'but checks Host')
  t.match(String((await get('/app.js', { host: HOST })).headers['content-type']), /^text\/javascript/)

  const post = (type: string | undefined, payload: string) => a.inject({ method: 'POST', url: '/api/login', headers: { host: HOST, 'x-marshmello-token': token, ...(type ? { 'content-type': type } : {}) }, payload })
  t.equal((await post('application/x-www-form-urlencoded', 'username=a&password=b')).statusCode, 403, 'form post')
  t.equal((await post('multipart/form-data; boundary=x', '--x--')).statusCode, 403, 'multipart post')
  t.equal((await post('text/plain', '{}')).statusCode, 403, 'text/plain post')
  t.equal((await post(undefined, '{}')).statusCode, 403, 'no content type')
  const json = await post('application/json; charset=utf-8', JSON.stringify({ username: 'alice', password: 'pw' }))
  t.equal(json.statusCode, 400, 'JSON passes the guard and reaches the route')
  t.equal(json.json().error.code, 'MM_ERR_NO_NETWORK', 'which says the network is missing')
})

t.test('errors are JSON 4xx', async (t) => {
  const { a, token } = await app()
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) => a.inject({ method, url, headers: { host: HOST, 'x-marshmello-token': token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, payload: body === undefined ? undefined : JSON.stringify(body) })
  const cases: [string, Awaited<ReturnType<typeof call>>, number, string][] = [
    ['bad room name', await call('GET', '/api/rooms/no%20spaces/messages'), 400, 'MM_ERR_VALIDATION'],
    ['empty text', await call('POST', '/api/rooms/lobby/messages', { text: '' }), 400, 'MM_ERR_VALIDATION'],
    ['extra field', await call('POST', '/api/login', { username: 'a', password: 'b', admin: true }), 400, 'MM_ERR_VALIDATION'],
    ['short key', await call('PUT', '/api/network', { relay: 'https://127.0.0.1:7101', directoryKey: 'abc' }), 400, 'MM_ERR_VALIDATION'],
    ['not https', await call('PUT', '/api/network', { relay: 'http://127.0.0.1:7101', directoryKey: 'a'.repeat(64) }), 400, 'MM_ERR_CONFIG'],
    ['unreachable network', await call('PUT', '/api/network', { relay: 'https://127.0.0.1:9', directoryKey: 'a'.repeat(64) }), 503, 'MM_ERR_NO_CONSENSUS'],
    ['no route', await call('GET', '/api/nope'), 404, 'MM_ERR_NOT_FOUND'],
    ['circuit without a network', await call('GET', '/api/circuit'), 400, 'MM_ERR_NO_NETWORK'],
    ['send without a network', await call('POST', '/api/rooms/lobby/messages', { text: 'hi' }), 400, 'MM_ERR_NO_NETWORK'],
    ['retry without a network', await call('POST', '/api/outbox/abc/retry', {}), 400, 'MM_ERR_NO_NETWORK'],
    ['bad client id', await call('POST', '/api/rooms/lobby/messages', { text: 'hi', clientId: 'no spaces' }), 400, 'MM_ERR_VALIDATION'],
    ['bad older-page cursor', await call('GET', '/api/rooms/lobby/messages?before=a%20b'), 400, 'MM_ERR_VALIDATION'],
  ]
  for (const [why, r, status, code] of cases) {
    t.equal(r.statusCode, status, why)
    t.equal(r.json().error.code, code, why)
  }
  const ev = await call('GET', '/api/events?after=0')
  t.same(ev.json(), { events: [], last: 0, reset: false }, 'an idle long-poll ends empty')
})

t.test('event feed: numbered, bounded, wakes waiters', async (t) => {
  const f = new EventFeed(3)
  const waiting = f.since(0, 5000)
  f.push({ type: 'status', ok: true, message: 'a' })
  t.same((await waiting).events.map((e) => e.seq), [1], 'a waiting poll wakes on push')
  for (let i = 0; i < 4; i++) f.push({ type: 'status', ok: true, message: String(i) })
  t.same((await f.since(2, 0)).events.map((e) => e.seq), [3, 4, 5], 'only the newest 3 are kept')
  t.equal((await f.since(1, 0)).reset, true, 'a page that fell behind is told to reload')
  t.equal((await f.since(9, 0)).reset, true, 'a cursor from the future too')
})

t.test('a DM that failed verification reaches the page without text', async (t) => {
  const v = view({ id: '1', from: 'mallory', to: 'alice', text: 'forged', sentAt: 1, verified: false, warning: 'bad signature' })
  t.equal(v.text, null)
  t.equal(v.verified, false)
  t.equal(v.warning, 'bad signature')
  t.equal(view({ id: '2', from: 'bob', to: 'alice', text: 'hi', sentAt: 1, verified: true }).text, 'hi')
  t.equal(view({ id: '3', from: 'bob', room: 'lobby', text: '<b>', sentAt: 1 }).text, '<b>')
})
