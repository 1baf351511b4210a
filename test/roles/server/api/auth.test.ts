import t from 'tap'
import { createHash } from 'node:crypto'
import { PASSWORD, call, rawKey, signUp, stack } from './helpers.js'

t.test('register and login', async t => {
  const { gateway, users } = await stack(t)
  const reg = await call(gateway, 'POST', '/v1/auth/register', { body: { username: 'Alice_01', password: PASSWORD } })
  t.equal(reg.status, 201)
  t.same(reg.json, { username: 'alice_01' }, 'stored lowercase')
  const rec = await users.get('alice_01')
  t.match(rec?.passwordHash, /^scrypt\$32768\$8\$1\$/)
  t.notMatch(rec?.passwordHash, PASSWORD)

  const login = await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'ALICE_01', password: PASSWORD } })
  t.equal(login.status, 200)
  t.equal(login.json.username, 'alice_01')
  t.type(login.json.token, 'string')
  t.ok(login.json.expiresAt > Date.now())
})

t.test('usernames are unique regardless of case', async t => {
  const { gateway } = await stack(t)
  t.equal((await call(gateway, 'POST', '/v1/auth/register', { body: { username: 'bob', password: PASSWORD } })).status, 201)
  const dup = await call(gateway, 'POST', '/v1/auth/register', { body: { username: 'BoB', password: 'another password' } })
  t.equal(dup.status, 409)
  t.equal(dup.json.error.code, 'MM_ERR_USER_EXISTS')
})

t.test('register validates names and passwords', async t => {
  const { gateway } = await stack(t)
  const cases: Array<[unknown, number]> = [
    [{ username: 'ab', password: PASSWORD }, 400],
    [{ username: 'a'.repeat(33), password: PASSWORD }, 400],
    [{ username: 'a b c', password: PASSWORD }, 400],
    [{ username: 'émile', password: PASSWORD }, 400],
    [{ username: 'abc', password: 'short' }, 400],
    [{ username: 'abc', password: 'x'.repeat(1025) }, 400],
    [{ username: 'abc', password: 'bad \ud800 surrogate' }, 400],
    [{ username: 'abc', password: PASSWORD, keys: { enc: 'AAAA', sign: rawKey() } }, 400],
    [{ username: 'abc' }, 400],
    [{ username: 'a-_', password: 'x'.repeat(1024) }, 201],
  ]
  for (const [body, status] of cases) {
    const res = await call(gateway, 'POST', '/v1/auth/register', { body })
    t.equal(res.status, status, JSON.stringify(body).slice(0, 80))
    if (status === 400) t.match(res.json.error.code, /^MM_ERR_/)
  }
})

t.test('wrong password and unknown user answer alike', async t => {
  const { gateway } = await stack(t)
  await signUp(gateway, 'carol')
  const timed = async (body: unknown) => {
    const start = process.hrtime.bigint()
    const res = await call(gateway, 'POST', '/v1/auth/login', { body })
    return { res, ms: Number(process.hrtime.bigint() - start) / 1e6 }
  }
  const wrong = await timed({ username: 'carol', password: 'not the password' })
  const unknown = await timed({ username: 'nobody', password: 'not the password' })
  t.equal(wrong.res.status, 401)
  t.equal(unknown.res.status, 401)
  t.equal(wrong.res.raw, unknown.res.raw, 'byte-identical bodies')
  t.equal(wrong.res.json.error.code, 'MM_ERR_BAD_CREDENTIALS')
  // both run one scrypt (tens of ms); a skipped hash would answer in well under 5 ms
  t.ok(unknown.ms > 5 && wrong.ms > 5, `both pay for scrypt (${unknown.ms.toFixed(1)} / ${wrong.ms.toFixed(1)} ms)`)
  t.ok(unknown.ms < wrong.ms * 4 && wrong.ms < unknown.ms * 4, 'similar timing')
})

t.test('logout revokes the token until it expires', async t => {
  const { gateway, users, tokens } = await stack(t)
  const token = await signUp(gateway, 'dave')
  const other = (await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'dave', password: PASSWORD } })).json.token
  t.equal((await call(gateway, 'GET', '/v1/rooms/lobby/messages', { token })).status, 200)
  const out = await call(gateway, 'POST', '/v1/auth/logout', { token })
  t.equal(out.status, 204)
  t.equal(out.raw, '')
  const after = await call(gateway, 'GET', '/v1/rooms/lobby/messages', { token })
  t.equal(after.status, 401)
  t.equal(after.json.error.code, 'MM_ERR_TOKEN')
  t.equal((await call(gateway, 'POST', '/v1/auth/logout', { token })).status, 401, 'cannot log out twice')
  t.equal((await call(gateway, 'GET', '/v1/rooms/lobby/messages', { token: other })).status, 200, 'other sessions live on')
  const { jti } = await tokens.verify(other)
  t.equal(await users.isTokenRevoked(jti), false)
})

t.test('JWT expiry and tampering at the gateway', async t => {
  let clock = Date.now()
  const { gateway } = await stack(t, { now: () => clock })
  const token = await signUp(gateway, 'erin')
  t.equal((await call(gateway, 'GET', '/v1/dms', { token })).status, 200)
  const [h, p, s] = token.split('.')
  const flip = (x: string, i: number) => x.slice(0, i) + (x[i] === 'A' ? 'B' : 'A') + x.slice(i + 1)
  for (const bad of [`${h}.${p}.${flip(s, 5)}`, `${h}.${flip(p, 7)}.${s}`, `${h}.${p}`, token + 'x']) {
    const res = await call(gateway, 'GET', '/v1/dms', { token: bad })
    t.equal(res.status, 401)
    t.equal(res.json.error.code, 'MM_ERR_TOKEN')
  }
  for (const header of [undefined, 'Basic abc', `Bearer`, `Token ${token}`]) {
    const res = await call(gateway, 'GET', '/v1/dms', { headers: header === undefined ? {} : { authorization: header } })
    t.equal(res.status, 401, String(header).slice(0, 20))
  }
  clock += 12 * 3600_000 + 1000
  const expired = await call(gateway, 'GET', '/v1/dms', { token })
  t.equal(expired.status, 401)
  t.equal(expired.json.error.code, 'MM_ERR_TOKEN_EXPIRED')
})

t.test('public keys and fingerprints', async t => {
  const { gateway } = await stack(t)
  const enc = rawKey()
  const sign = rawKey()
  t.equal((await call(gateway, 'POST', '/v1/auth/register', { body: { username: 'frank', password: PASSWORD, keys: { enc, sign } } })).status, 201)
  const token = await signUp(gateway, 'grace')
  const fp = createHash('sha256').update(Buffer.concat([Buffer.from(enc, 'base64'), Buffer.from(sign, 'base64')])).digest('hex')
  const got = await call(gateway, 'GET', '/v1/users/FRANK/keys', { token })
  t.equal(got.status, 200)
  t.same(got.json, { username: 'frank', keys: { enc, sign }, fingerprint: fp })

  t.same((await call(gateway, 'GET', '/v1/users/grace/keys', { token })).json, { username: 'grace', keys: null, fingerprint: null })
  t.equal((await call(gateway, 'GET', '/v1/users/nobody/keys', { token })).json.error.code, 'MM_ERR_USER_UNKNOWN')
  // quiet key lookups (issue 16 item 5): fetched on a circuit that carries no JWT, so no token is needed
  const anonymous = await call(gateway, 'GET', '/v1/users/frank/keys')
  t.equal(anonymous.status, 200, 'needs no token')
  t.same(anonymous.json, { username: 'frank', keys: { enc, sign }, fingerprint: fp }, 'and answers the same')

  const mine = { enc: rawKey(), sign: rawKey() }
  const put = await call(gateway, 'PUT', '/v1/users/me/keys', { token, body: mine })
  t.equal(put.status, 200)
  t.same(put.json.keys, mine)
  t.same((await call(gateway, 'GET', '/v1/users/me/keys', { token })).json.keys, mine)
  t.same((await call(gateway, 'GET', '/v1/users/grace/keys', { token })).json.keys, mine)

  const bad = [
    { enc: rawKey() },
    { enc: Buffer.alloc(31).toString('base64'), sign: rawKey() },
    { enc: Buffer.alloc(33).toString('base64'), sign: rawKey() },
    { enc: rawKey().replace('=', ''), sign: rawKey() },
    { enc: 'A'.repeat(42) + 'B=', sign: rawKey() }, // non-canonical padding bits
    { enc: 5, sign: rawKey() },
  ]
  for (const body of bad) {
    const res = await call(gateway, 'PUT', '/v1/users/me/keys', { token, body })
    t.equal(res.status, 400, JSON.stringify(body).slice(0, 60))
  }
  t.same((await call(gateway, 'GET', '/v1/users/me/keys', { token })).json.keys, mine, 'unchanged by bad input')
})

t.test('the gateway strips client-sent x-marshmello headers', async t => {
  const { gateway, internalToken } = await stack(t)
  const token = await signUp(gateway, 'heidi')
  await signUp(gateway, 'ivan')
  const spoof = { 'x-marshmello-user': 'ivan', 'x-marshmello-internal': internalToken }
  const res = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, headers: spoof, body: { clientId: 'c1', text: 'hi' } })
  t.equal(res.status, 201)
  t.equal(res.json.message.from, 'heidi', 'the token decides who is speaking')
  const anon = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { headers: spoof, body: { clientId: 'c2', text: 'hi' } })
  t.equal(anon.status, 401, 'headers alone do not authenticate')
  t.equal((await call(gateway, 'POST', '/internal/token-status', { headers: spoof, body: { jti: 'x' } })).status, 404, 'internal routes are not public')
  for (const url of ['/v1/rooms/../internal/token-status', '/v1/rooms/%2e%2e/x', '/v1/nothing', '/v1', '/v1/stats/']) {
    t.equal((await call(gateway, 'GET', url, { token })).status, 404, url)
  }
})
