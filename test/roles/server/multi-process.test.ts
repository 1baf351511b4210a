// Two all-in-one server processes sharing one PostgreSQL: users (`--users`) and
// messages (`--messages postgres://…?schema=`), in a schema unique to this run and
// dropped at the end. A user registered through one logs in through the other; a
// message sent through one wakes a long-poll waiting on the other (LISTEN/NOTIFY).
// Both use --direct-api (plain HTTP on loopback) and one shared token secret file.
import t from 'tap'
import { join } from 'node:path'
import { startServerProc, stopProc, type ServerInfo } from '../../helpers/network.js'
import { waitUntil } from '../../helpers/wait.js'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'
import { tmp } from '../../helpers/net.js'
import { randomBytes } from 'node:crypto'
import { PAD_BUCKETS } from '../../../src/onion/sealed/padding.js'
import { SEALED_OVERHEAD } from '../../../src/onion/sealed/sealed-envelope.js'
import { accessVerifier, deliveryTokenFor } from '../../../src/roles/client/e2e/sealed.js'
import { PG_URL, pgDropSchemas, reachable } from '../../storage/backends.js'

const pgUp = await reachable(PG_URL)

async function call (base: string, method: string, path: string, o: { body?: unknown, token?: string } = {}): Promise<{ status: number, json: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
    body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
  })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : null }
}

if (!pgUp) {
  t.comment(`SKIPPED: multi-process server test (${PG_URL} not reachable)`)
  t.test('two servers on one PostgreSQL', { skip: `${PG_URL} not reachable` }, async () => {})
} else {
  t.test('two servers on one PostgreSQL share users, messages and long-poll wake-ups', async t => {
    const schema = `mm_test_mp_${process.pid}_${Date.now()}`
    const url = `${PG_URL}?schema=${schema}`
    const dir = tmp('mm-mp-')
    const secret = join(dir, 'token.secret')
    const servers: ServerInfo[] = []
    t.teardown(async () => {
      await Promise.all(servers.map(s => stopProc(s.proc)))
      await pgDropSchemas(PG_URL, [schema])
    })
    const start = (name: string) => startServerProc({
      dataDir: join(dir, name),
      args: ['--users', url, '--messages', url, '--direct-api', '0', '--token-secret-file', secret],
    })
    servers.push(await start('a')) // creates the shared token secret
    servers.push(await start('b'))
    const [a, b] = servers.map(s => s.directApiUrl!)
    t.ok(a && b, 'both print a direct API URL')

    const password = 'correct horse battery staple'
    t.equal((await call(a, 'POST', '/v1/auth/register', { body: { username: 'alice', password } })).status, 201)
    t.equal((await call(b, 'POST', '/v1/auth/register', { body: { username: 'bob', password } })).status, 201)
    const dup = await call(b, 'POST', '/v1/auth/register', { body: { username: 'ALICE', password } })
    t.equal(dup.status, 409)
    t.equal(dup.json.error.code, 'MM_ERR_USER_EXISTS', 'a name taken through A is taken through B')
    const loginB = await call(b, 'POST', '/v1/auth/login', { body: { username: 'alice', password } })
    t.equal(loginB.status, 200, 'alice registered through A logs in through B')
    const aliceB = loginB.json.token as string
    const bobA = (await call(a, 'POST', '/v1/auth/login', { body: { username: 'bob', password } })).json.token as string

    // bob waits on B for the lobby, after everything there so far
    const before = await call(b, 'GET', '/v1/rooms/lobby/messages', { token: aliceB })
    t.equal(before.status, 200)
    const cursor = before.json.cursor as string | null
    const waitStarted = Date.now()
    const bobOnB = (await call(b, 'POST', '/v1/auth/login', { body: { username: 'bob', password } })).json.token as string
    const polled = call(b, 'GET', `/v1/rooms/lobby/messages?wait=25${cursor ? `&after=${cursor}` : ''}`, { token: bobOnB })
    // the long-poll is parked on B (B's operator counter)
    const parkedOnB = async () => Number((await fetchOperatorJson(`${servers[1].url}/metrics`, readOperatorCredentials(servers[1].dataDir)))?.longPollsWaiting)
    t.ok(await waitUntil(async () => await parkedOnB() === 1), 'the long-poll waits on B')
    const sent = await call(a, 'POST', '/v1/rooms/lobby/messages', { token: bobA, body: { clientId: 'mp-1', text: 'hello from A' } })
    t.equal(sent.status, 201)
    const sentAt = Date.now()
    const got = await polled
    const wokeAfter = Date.now() - sentAt
    t.equal(got.status, 200)
    t.same(got.json.messages.map((m: { id: string, text?: string, body: string }) => [m.id, m.body]), [[sent.json.message.id, 'hello from A']], 'the long-poll on B returns the message sent through A')
    t.ok(wokeAfter < 3_000, `woken ${wokeAfter} ms after the send, not at the 25 s timeout`)
    t.ok(Date.now() - waitStarted < 10_000, 'returned well before the wait expired')

    // a DM through B is read through A; a token issued by A is revoked on B too
    // (sealed: bob's delivery setting through A, the DM through B with no JWT)
    const accessKey = randomBytes(16)
    t.equal((await call(a, 'PUT', '/v1/dms/settings', { token: bobA, body: { verifier: accessVerifier(accessKey), allowStrangers: true } })).status, 204)
    const envelope = randomBytes(SEALED_OVERHEAD + PAD_BUCKETS[0]).toString('base64url')
    t.equal((await call(b, 'POST', '/v1/dms/sealed', { body: { to: 'bob', envelope, deliveryToken: deliveryTokenFor(accessKey) } })).status, 201)
    const dms = await call(a, 'GET', '/v1/dms', { token: bobA })
    t.same(dms.json.messages.map((m: { body: string }) => m.body), [envelope])
    t.equal((await call(a, 'POST', '/v1/auth/logout', { token: bobA })).status, 204)
    const revoked = await call(b, 'GET', '/v1/dms', { token: bobA })
    t.equal(revoked.status, 401, 'logout through A is seen by B (shared revocations)')
    t.equal(revoked.json.error.code, 'MM_ERR_TOKEN')
  })
}
