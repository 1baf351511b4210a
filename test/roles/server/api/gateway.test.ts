// createGateway called as a function, as the onion's final hop and the direct API call
// it: routing, the body limit, bearer checks, the error shape, and a real round trip
// through the in-process services (sqlite users, nedb messages).

import t from 'tap'
import { createGateway, httpUpstream, inProcessUpstream, type Gateway, type GatewayResponse } from '../../../../src/roles/server/api/gateway-api.js'
import { BODY_LIMIT } from '../../../../src/roles/server/api/http.js'
import { PASSWORD, stack } from './helpers.js'

const JSON_TYPE = 'application/json'
const parse = (r: GatewayResponse) => JSON.parse(r.body.toString('utf8'))
const body = (v: unknown) => Buffer.from(JSON.stringify(v))

const s = await stack(t)
const upstream = inProcessUpstream(s.services.dispatch)
const gw: Gateway = createGateway({ tokens: s.tokens, upstream: { auth: upstream, messages: upstream } })

t.test('register, login and a room send round trip through the function', async t => {
  const reg = await gw({ method: 'POST', url: '/v1/auth/register', contentType: JSON_TYPE, body: body({ username: 'gwuser', password: PASSWORD }) })
  t.equal(reg.status, 201)
  const login = await gw({ method: 'POST', url: '/v1/auth/login', contentType: JSON_TYPE, body: body({ username: 'gwuser', password: PASSWORD }) })
  t.equal(login.status, 200)
  t.match(login.contentType, /^application\/json/)
  const token = parse(login).token as string
  const sent = await gw({ method: 'POST', url: '/v1/rooms/lobby/messages', contentType: JSON_TYPE, authorization: `Bearer ${token}`, body: body({ clientId: 'g1', text: 'hello through the gateway' }) })
  t.equal(sent.status, 201)
  const read = await gw({ method: 'GET', url: '/v1/rooms/lobby/messages?limit=10', authorization: `Bearer ${token}` })
  t.equal(read.status, 200)
  t.same(parse(read).messages.map((m: { body: string, from: string }) => [m.from, m.body]), [['gwuser', 'hello through the gateway']])
})

t.test('refusals keep the API error shape and never throw', async t => {
  const cases: [string, Parameters<Gateway>[0], number, string][] = [
    ['no token', { method: 'GET', url: '/v1/rooms/lobby/messages' }, 401, 'MM_ERR_TOKEN'],
    ['a malformed bearer', { method: 'GET', url: '/v1/rooms/lobby/messages', authorization: 'Bearer a b' }, 401, 'MM_ERR_TOKEN'],
    ['a forged token', { method: 'GET', url: '/v1/rooms/lobby/messages', authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA' }, 401, ''],
    ['an unknown route', { method: 'GET', url: '/v2/rooms' }, 404, 'MM_ERR_NOT_FOUND'],
    ['an unknown service', { method: 'GET', url: '/v1/internal/token-status' }, 404, 'MM_ERR_NOT_FOUND'],
    ['a dot segment', { method: 'GET', url: '/v1/../internal/token-status' }, 404, 'MM_ERR_NOT_FOUND'],
    ['percent-encoding', { method: 'GET', url: '/v1/rooms/%2e%2e/messages' }, 404, 'MM_ERR_NOT_FOUND'],
    ['a method the API does not use', { method: 'OPTIONS', url: '/v1/rooms/lobby/messages' }, 404, 'MM_ERR_NOT_FOUND'],
    ['a body over the limit', { method: 'POST', url: '/v1/auth/login', contentType: JSON_TYPE, body: Buffer.alloc(BODY_LIMIT + 1, 0x20) }, 413, 'MM_ERR_TOO_LARGE'],
    ['a body that is not JSON', { method: 'POST', url: '/v1/auth/login', contentType: JSON_TYPE, body: Buffer.from('{nope') }, 400, 'MM_ERR_BAD_JSON'],
  ]
  for (const [what, req, status, code] of cases) {
    const res = await gw(req)
    t.equal(res.status, status, `${what}: ${status}`)
    const err = parse(res).error
    t.type(err?.message, 'string', `${what}: an error message`)
    if (code) t.equal(err.code, code, `${what}: ${code}`)
  }
})

t.test('healthz answers without a token', async t => {
  const res = await gw({ method: 'GET', url: '/healthz' })
  t.equal(res.status, 200)
  t.same(parse(res), { ok: true, service: 'gateway' })
})

t.test('an unreachable service is a 503 with a generic message, not an exception', async t => {
  // a real HTTP upstream pointed at a closed loopback port
  const auth = httpUpstream('http://127.0.0.1:1', s.internalToken)
  t.teardown(() => auth.close())
  const down = createGateway({ tokens: s.tokens, upstream: { auth, messages: upstream } })
  const res = await down({ method: 'POST', url: '/v1/auth/login', contentType: JSON_TYPE, body: body({ username: 'gwuser', password: PASSWORD }) })
  t.equal(res.status, 503)
  t.same(parse(res).error, { code: 'MM_ERR_UPSTREAM', message: 'service unavailable, try again' })
})
