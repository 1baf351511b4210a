import t from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { nedbMessageStore } from '../../../../src/storage/messages/nedb.js'
import { sqliteUserStore } from '../../../../src/storage/users/sqlite.js'
import { buildGatewayApi, buildServiceApp, httpUpstream, remoteRevocationCheck } from '../../../../src/roles/server/api/gateway-api.js'
import { TokenService, loadOrCreateSecret } from '../../../../src/roles/server/api/tokens.js'
import { serviceAppStats } from '../../../../src/roles/server/api/service-app.js'
import { waitUntil } from '../../../helpers/wait.js'
import { call, stack, tempDir } from './helpers.js'

t.test('services need the internal token', async t => {
  const { service, internalToken, users, tokens } = await stack(t)
  t.same((await call(service, 'GET', '/healthz')).json, { ok: true, service: 'all' })
  const routes: Array<[string, string, unknown?]> = [
    ['POST', '/v1/auth/register', { username: 'zed', password: 'password123' }],
    ['POST', '/v1/auth/login', { username: 'zed', password: 'password123' }],
    ['POST', '/v1/auth/logout'],
    ['GET', '/v1/users/zed/keys'],
    ['PUT', '/v1/users/me/keys', { enc: 'x', sign: 'y' }],
    ['POST', '/v1/rooms/lobby/messages', { clientId: 'a', text: 'b' }],
    ['GET', '/v1/rooms/lobby/messages'],
    ['GET', '/v1/dms'],
    ['POST', '/internal/token-status', { jti: 'x' }],
  ]
  const wrong: Array<Record<string, string>> = [{}, { 'x-marshmello-internal': 'nope' }, { 'x-marshmello-internal': internalToken + 'x' }, { 'x-marshmello-internal': internalToken.slice(1) }]
  for (const [method, url, body] of routes) {
    for (const headers of wrong) {
      const res = await call(service, method, url, { body, headers: { ...headers, 'x-marshmello-user': 'zed' } })
      t.equal(res.status, 401, `${method} ${url}`)
      t.equal(res.json?.error.code, 'MM_ERR_INTERNAL_TOKEN')
    }
  }
  t.equal(await users.count(), 0, 'nothing happened')

  const ok = { 'x-marshmello-internal': internalToken }
  t.equal((await call(service, 'POST', '/v1/auth/register', { headers: ok, body: { username: 'zed', password: 'password123' } })).status, 201)
  t.equal((await call(service, 'GET', '/v1/dms', { headers: ok })).status, 401, 'a user-scoped route needs x-marshmello-user')
  t.equal((await call(service, 'GET', '/v1/dms', { headers: { ...ok, 'x-marshmello-user': 'Not Valid' } })).status, 401)
  t.equal((await call(service, 'GET', '/v1/dms', { headers: { ...ok, 'x-marshmello-user': 'zed' } })).status, 200)
  const { jti } = await tokens.verify((await tokens.issue('zed')).token)
  t.same((await call(service, 'POST', '/internal/token-status', { headers: ok, body: { jti } })).json, { revoked: false })
  t.equal((await call(service, 'POST', '/internal/user-status', { headers: ok, body: { username: 'zed' } })).status, 404, 'no internal "does this user exist" oracle: it served only identified DMs')
  t.equal((await call(service, 'GET', '/nope', { headers: ok })).json.error.code, 'MM_ERR_NOT_FOUND')
})

t.test('split deployment over real HTTP', async t => {
  const dir = await tempDir(t)
  const users = sqliteUserStore({ path: join(dir, 'users.db') })
  const messages = await nedbMessageStore({ path: join(dir, 'messages.db') })
  const secret = await loadOrCreateSecret(join(dir, 'token.secret'))
  const internalToken = randomBytes(24).toString('base64url')

  // auth: owns the users and the revocation list
  const authTokens = new TokenService({ secret }, { isRevoked: jti => users.isTokenRevoked(jti) })
  const auth = buildServiceApp({ service: 'auth', internalToken, users, tokens: authTokens })
  const authUrl = await auth.listen({ host: '127.0.0.1', port: 0 })
  const authUp = httpUpstream(authUrl, internalToken)
  // messages: asks auth whether DM recipients exist
  const msgs = buildServiceApp({ service: 'messages', internalToken, messages })
  const msgsUrl = await msgs.listen({ host: '127.0.0.1', port: 0 })
  const msgsUp = httpUpstream(msgsUrl, internalToken)
  // gateway: verifies JWTs with the shared secret, asks auth about revocation
  const gwTokens = new TokenService({ secret }, { isRevoked: remoteRevocationCheck(authUp) })
  const gateway = buildGatewayApi({ tokens: gwTokens, upstream: { auth: authUp, messages: msgsUp } })
  t.teardown(async () => {
    await gateway.close()
    await authUp.close()
    await msgsUp.close()
    await auth.close()
    await msgs.close()
    await users.close()
    await messages.close()
  })

  t.same((await call(gateway, 'GET', '/healthz')).json, { ok: true, service: 'gateway' })
  const direct = await fetch(`${msgsUrl}/v1/dms`)
  t.equal(direct.status, 401, 'a service on the network refuses callers without the internal token')

  for (const name of ['alice', 'bob']) {
    t.equal((await call(gateway, 'POST', '/v1/auth/register', { body: { username: name, password: 'password123' } })).status, 201)
  }
  t.equal((await call(gateway, 'POST', '/v1/auth/register', { body: { username: 'ALICE', password: 'password123' } })).status, 409)
  const alice = (await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'alice', password: 'password123' } })).json.token
  const bob = (await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'bob', password: 'password123' } })).json.token
  const wrongPw = await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'alice', password: 'wrong-pass' } })
  const noUser = await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'carl', password: 'wrong-pass' } })
  t.equal(wrongPw.status, 401)
  t.equal(wrongPw.raw, noUser.raw)

  const start = Date.now()
  const waiting = call(gateway, 'GET', '/v1/rooms/lobby/messages?wait=10', { token: alice })
  t.ok(await waitUntil(() => serviceAppStats(msgs).longPollsWaiting === 1), 'the long-poll is parked at the messages service')
  const sent = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token: bob, body: { clientId: 'h1', text: 'over http' } })
  t.equal(sent.status, 201)
  const woke = await waiting
  t.same(woke.json.messages.map((m: any) => m.body), ['over http'])
  t.ok(Date.now() - start < 2000, 'long-poll woke through two HTTP hops')
  t.equal((await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token: bob, body: { clientId: 'h1', text: 'over http' } })).status, 200)

  t.equal((await call(gateway, 'POST', '/v1/dms', { token: alice, body: { to: 'bob', clientId: 'd', body: 'Y3Q=' } })).status, 404, 'no identified DMs')
  const sealed = await call(gateway, 'GET', '/v1/dms/token-key')
  t.same([sealed.status, sealed.json?.error?.code], [503, 'MM_ERR_SEALED_UNAVAILABLE'], 'a messages service apart has no trust root: sealed sender says so')
  t.equal(await messages.count(), 1, 'the room message is stored')
  t.equal((await call(gateway, 'GET', '/v1/stats', { token: alice })).status, 404, 'no live counters in the API: /v1/stats is gone (issue 14)')

  const timeout = await call(gateway, 'GET', '/v1/dms?wait=1&after=zzzzzzzzzzzzzzzzzzzzz', { token: bob })
  t.same(timeout.json.messages, [], 'long-poll timeout over HTTP')

  t.equal((await call(gateway, 'POST', '/v1/auth/logout', { token: alice })).status, 204)
  const revoked = await call(gateway, 'GET', '/v1/dms', { token: alice })
  t.equal(revoked.status, 401, 'a revocation made by auth is seen by the gateway')
  t.equal(revoked.json.error.code, 'MM_ERR_TOKEN')
  t.equal((await call(gateway, 'POST', '/v1/auth/register', { body: '{"username":' })).json.error.code, 'MM_ERR_BAD_JSON')

  await auth.close()
  const down = await call(gateway, 'GET', '/v1/dms', { token: bob })
  t.equal(down.status, 503, 'fails closed when auth cannot say whether a token is revoked')
})

t.test('long-polls free their slot when the client goes away, and close() does not wait for them', async t => {
  const dir = await tempDir(t)
  const messages = await nedbMessageStore({ path: join(dir, 'messages.db') })
  const internalToken = randomBytes(24).toString('base64url')
  const app = buildServiceApp({ service: 'messages', internalToken, messages, maxLongPolls: 1 })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close(); await messages.close() })
  const headers = { 'x-marshmello-internal': internalToken, 'x-marshmello-user': 'alice' }

  const gone = new AbortController()
  const parked = () => serviceAppStats(app).longPollsWaiting
  const first = fetch(`${url}/v1/dms?wait=20`, { headers, signal: gone.signal }).catch(err => err)
  t.ok(await waitUntil(() => parked() === 1), 'the first long-poll is parked')
  t.equal((await fetch(`${url}/v1/dms?wait=1`, { headers })).status, 503, 'the one slot is taken')
  gone.abort()
  t.match(await first, { name: 'AbortError' })
  t.ok(await waitUntil(() => parked() === 0), 'the client went away: its slot is free')
  const start = Date.now()
  const second = fetch(`${url}/v1/dms?wait=20`, { headers })
  t.ok(await waitUntil(() => parked() === 1), 'the second long-poll is parked')
  t.equal((await fetch(`${url}/v1/dms?wait=1`, { headers })).status, 503, 'taken again by the second')
  await app.close()
  const res = await second
  t.equal(res.status, 200, 'a waiting request is answered at shutdown')
  t.same((await res.json()).messages, [])
  t.ok(Date.now() - start < 5000, 'close() did not wait out the long-poll')
})
