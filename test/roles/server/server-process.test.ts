// `marshmello server` as a process, with no external service: what it prints, its
// HTTPS face (health and directory, never the API; counts only with the operator
// token), the loopback direct API, and
// durability: 50 sends acknowledged through the direct API survive kill -9, and
// after a restart on the same data dir the users log in and the directory key
// and final hop identity are unchanged.
import t from 'tap'
import { join } from 'node:path'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'
import { tmp } from '../../helpers/net.js'
import { randomBytes } from 'node:crypto'
import { accessVerifier, deliveryTokenFor } from '../../../src/roles/client/e2e/sealed.js'
import { PAD_BUCKETS } from '../../../src/onion/sealed/padding.js'
import { SEALED_OVERHEAD } from '../../../src/onion/sealed/sealed-envelope.js'
import { startServerProc, stopProc, type ServerInfo } from '../../helpers/network.js'

interface Res { status: number, json: any }

async function call (base: string, method: string, path: string, o: { body?: unknown, token?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = {}
  if (o.body !== undefined) headers['content-type'] = 'application/json'
  if (o.token) headers.authorization = `Bearer ${o.token}`
  const res = await fetch(base + path, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) })
  const text = await res.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json }
}

const N = 50
const USERS = [{ username: 'alice', password: 'alice-password-1' }, { username: 'bob', password: 'bob-password-22' }]

t.test('a server process alone: banner, healthz, direct API, no API on HTTPS, durable across kill -9', async (t) => {
  const dataDir = join(tmp('mm-srv-'), 'server')
  let srv: ServerInfo = await startServerProc({ dataDir, args: ['--direct-api', '0'] })
  t.teardown(() => stopProc(srv.proc))

  t.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'prints its HTTPS URL')
  t.match(srv.proc.stdout(), `data dir ${dataDir}\n`, 'prints its data dir')
  t.match(srv.directoryKey, /^[0-9a-f]{64}$/, 'prints the directory key fingerprint')
  t.match(srv.fingerprint, /^[0-9a-f]{64}$/, 'prints the final hop identity')
  t.match(srv.directApiUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'the direct API is on loopback')
  const keyDoc = JSON.parse((await fetchDocument(`${srv.url}/v1/directory/key`)).text)
  t.equal(keyDoc.fingerprint, srv.directoryKey, 'the directory serves the key it printed')

  const health = await fetchDocument(`${srv.url}/healthz`)
  t.equal(health.status, 200)
  t.same(JSON.parse(health.text), { ok: true, role: 'server', service: 'all' }, 'public health: up, and nothing countable')
  const counts = await fetchOperatorJson(`${srv.url}/metrics`, readOperatorCredentials(dataDir))
  t.match(counts, { users: 0, messages: 0, relays: 0, circuits: 0, circuitsServed: 0, requestsServed: 0 }, 'the operator reads the counts with the token in the data dir')

  // the API is never served on the public HTTPS face: only through circuits (or the loopback direct API)
  for (const [method, path] of [['POST', '/v1/auth/register'], ['POST', '/v1/auth/login'], ['GET', '/v1/rooms/lobby/messages'], ['GET', '/v1/dms']] as const) {
    const res = await fetchDocument(srv.url + path, { method, json: method === 'POST' ? USERS[0] : undefined })
    t.equal(res.status, 404, `${method} ${path} is not on the HTTPS port`)
    t.equal(JSON.parse(res.text).error?.code, 'MM_ERR_NOT_FOUND')
  }
  t.equal((await call(srv.directApiUrl!, 'POST', '/v1/auth/login', { body: USERS[0] })).status, 401, 'and the HTTPS attempt registered nobody')

  const api = srv.directApiUrl!
  for (const u of USERS) t.equal((await call(api, 'POST', '/v1/auth/register', { body: u })).status, 201, `register ${u.username}`)
  const login = await call(api, 'POST', '/v1/auth/login', { body: USERS[0] })
  t.equal(login.status, 200)
  const token = login.json.token as string
  t.type(token, 'string')

  const sent: string[] = []
  for (let i = 0; i < N; i++) {
    const text = `durable message ${i} ✓`
    const res = await call(api, 'POST', '/v1/rooms/durable/messages', { token, body: { clientId: `c-${i}`, text } })
    t.equal(res.status, 201, `send ${i} acknowledged`)
    if (res.status !== 201) break
    sent.push(res.json.message.id)
  }
  const before = await call(api, 'GET', '/v1/rooms/durable/messages?limit=200', { token })
  t.equal(before.json.messages.length, N, 'all read back before the crash')
  // a sealed DM to alice (the only kind the server takes): her delivery setting, then the envelope with no token
  const accessKey = randomBytes(16)
  t.equal((await call(api, 'PUT', '/v1/dms/settings', { token, body: { verifier: accessVerifier(accessKey), allowStrangers: true } })).status, 204)
  const envelope = randomBytes(SEALED_OVERHEAD + PAD_BUCKETS[0]).toString('base64url')
  const dm = await call(api, 'POST', '/v1/dms/sealed', { body: { to: 'alice', envelope, deliveryToken: deliveryTokenFor(accessKey) } })
  t.equal(dm.status, 201, 'a DM is acknowledged')

  // crash: no shutdown hook runs
  srv.proc.child.kill('SIGKILL')
  await srv.proc.exited
  const oldKey = srv.directoryKey
  const oldIdentity = srv.fingerprint

  srv = await startServerProc({ dataDir, args: ['--direct-api', '0'] })
  t.equal(srv.directoryKey, oldKey, 'the directory key fingerprint survives the restart')
  t.equal(srv.fingerprint, oldIdentity, 'and so does the final hop identity')
  const api2 = srv.directApiUrl!
  for (const u of USERS) t.equal((await call(api2, 'POST', '/v1/auth/login', { body: u })).status, 200, `${u.username} still logs in`)
  t.equal((await call(api2, 'POST', '/v1/auth/login', { body: { ...USERS[0], password: 'wrong-password' } })).status, 401, 'a wrong password still fails')
  const token2 = (await call(api2, 'POST', '/v1/auth/login', { body: USERS[0] })).json.token
  const after = await call(api2, 'GET', '/v1/rooms/durable/messages?limit=200', { token: token2 })
  t.equal(after.status, 200)
  t.same(after.json.messages.map((m: { id: string }) => m.id), sent, 'all 50 acknowledged messages are there, in order')
  t.same(after.json.messages.map((m: { body: string }) => m.body), sent.map((_id, i) => `durable message ${i} ✓`))
  const dms = await call(api2, 'GET', '/v1/dms', { token: token2 })
  t.match(dms.json.messages, [{ from: '', to: 'alice', body: envelope }], 'the DM is there')
  // a retried send after the restart is still recognised (idempotency survives too)
  const retry = await call(api2, 'POST', '/v1/rooms/durable/messages', { token: token2, body: { clientId: 'c-0', text: 'durable message 0 ✓' } })
  t.equal(retry.status, 200, 'a retried send is not stored twice')
  t.equal(retry.json.message.id, sent[0])
  t.match(await fetchOperatorJson(`${srv.url}/metrics`, readOperatorCredentials(dataDir)), { users: 2, messages: N + 1 })
  // the old token is still valid after the restart (the secret is in the data dir)
  t.equal((await call(api2, 'GET', '/v1/dms', { token })).status, 200, 'a token issued before the crash still works')
})
