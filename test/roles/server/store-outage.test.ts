// PostgreSQL unreachable mid-run for one server process (users and messages on
// PostgreSQL through a cuttable TCP proxy; the database itself keeps running for
// everyone else): requests fail at once with 503 MM_ERR_STORE_UNAVAILABLE, the process
// stays up and answers /healthz, service resumes when the proxy is restored, a
// long-poll is woken again by another process's message afterwards (LISTEN
// reconnected, seen in pg_stat_activity), and every send that was
// acknowledged (2xx) before, during or after is readable at the end.
import t from 'tap'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { join } from 'node:path'
import { startServerProc, stopProc, type ServerInfo } from '../../helpers/network.js'
import { tmp } from '../../helpers/net.js'
import { tcpProxy } from '../../helpers/tcp-proxy.js'
import pg from 'pg'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'
import { postgresMessageStore } from '../../../src/storage/messages/postgres.js'
import { sleep, waitUntil } from '../../helpers/wait.js'
import { PG_URL, pgDropSchemas, reachable } from '../../storage/backends.js'

const pgUp = await reachable(PG_URL)

async function call (base: string, method: string, path: string, o: { body?: unknown, token?: string } = {}): Promise<{ status: number, json: any, ms: number }> {
  const started = Date.now()
  const res = await fetch(base + path, {
    method,
    headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
    body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
    signal: AbortSignal.timeout(30_000),
  })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : null, ms: Date.now() - started }
}

/** GET over HTTPS to a hop's self-signed face (the project's fetch for signature-checked documents) */
async function httpsJson (url: string): Promise<{ status: number, json: any }> {
  const res = await fetchDocument(url)
  return { status: res.status, json: JSON.parse(res.text) }
}

if (!pgUp) {
  t.comment(`SKIPPED: store outage test (${PG_URL} not reachable)`)
  t.test('PostgreSQL outage', { skip: `${PG_URL} not reachable` }, async () => {})
} else {
  t.test('PostgreSQL cut and restored under a running server', async t => {
    const schema = `mm_test_outage_${process.pid}_${Date.now()}`
    const pgUrl = new URL(PG_URL)
    const proxy = await tcpProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) })
    const url = `${proxy.via(PG_URL)}?schema=${schema}`
    let server: ServerInfo | undefined
    t.teardown(async () => {
      if (server) await stopProc(server.proc)
      await proxy.close()
      await pgDropSchemas(PG_URL, [schema])
    })
    server = await startServerProc({ dataDir: join(tmp('mm-outage-'), 'server'), args: ['--users', url, '--messages', url, '--direct-api', '0'] })
    const api = server.directApiUrl!
    const password = 'correct horse battery staple'
    t.equal((await call(api, 'POST', '/v1/auth/register', { body: { username: 'alice', password } })).status, 201)
    const token = (await call(api, 'POST', '/v1/auth/login', { body: { username: 'alice', password } })).json.token as string

    const acked: string[] = []
    let n = 0
    const send = async () => {
      const clientId = `m-${++n}`
      const r = await call(api, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId, text: `text ${clientId}` } }).catch(() => null)
      if (r !== null && r.status >= 200 && r.status < 300) acked.push(r.json.message.id)
      return r
    }
    for (let i = 0; i < 5; i++) t.equal((await send())?.status, 201)

    // the server's LISTEN backend (PostgreSQL's own view, not through the proxy)
    const channel = `mm_messages_${schema}`.slice(0, 63)
    const listeners = async (): Promise<number[]> => {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      try {
        return (await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE query = $1', [`LISTEN "${channel}"`])).rows.map((r) => r.pid)
      } finally { await c.end() }
    }
    const operatorMetrics = async (): Promise<Record<string, number>> => (await fetchOperatorJson(`${server!.url}/metrics`, readOperatorCredentials(server!.dataDir))) as Record<string, number>
    const listenedBefore = await listeners()
    t.equal(listenedBefore.length, 1, 'the server listens for other processes\' messages')

    proxy.cut()
    const during = await send()
    t.equal(during?.status, 503, 'a send while PostgreSQL is unreachable gets 503')
    t.equal(during?.json.error.code, 'MM_ERR_STORE_UNAVAILABLE')
    t.ok(during!.ms < 3_000, `quickly (${during!.ms} ms)`)
    const login = await call(api, 'POST', '/v1/auth/login', { body: { username: 'alice', password } })
    t.equal(login.status, 503, 'so does a login')
    t.equal(login.json.error.code, 'MM_ERR_STORE_UNAVAILABLE')
    t.notMatch(JSON.stringify(login.json), /127\.0\.0\.1|postgres:/, 'the error names no URL')
    const read = await call(api, 'GET', '/v1/rooms/lobby/messages', { token })
    t.equal(read.status, 503, 'and a read')
    t.equal((await call(api, 'GET', '/healthz')).status, 200, 'the gateway health endpoint answers')
    const face = await httpsJson(`${server.url}/healthz`)
    t.equal(face.status, 503, 'the server /healthz answers, reporting the store as unavailable')
    const live = await httpsJson(`${server.url}/livez`)
    t.equal(live.status, 200, '/livez: the process is alive, so an orchestrator does not restart it')
    t.equal(face.json.error?.code, 'MM_ERR_STORE_UNAVAILABLE')
    for (let i = 0; i < 5; i++) await send()
    t.equal(server.proc.child.exitCode, null, 'the process is alive')

    proxy.restore()
    const deadline = Date.now() + 10_000
    let back = await send()
    while (back?.status !== 201 && Date.now() < deadline) { await sleep(200); back = await send() }
    t.equal(back?.status, 201, 'sends succeed again once PostgreSQL is reachable')
    t.equal((await call(api, 'POST', '/v1/auth/login', { body: { username: 'alice', password } })).status, 200, 'and logins')
    t.equal((await httpsJson(`${server.url}/healthz`)).status, 200, 'and /healthz is 200 again')

    // the LISTEN connection came back too (its back-off is at most 5 s): PostgreSQL shows
    // a new backend listening on the store's channel, not the one the cut ended
    t.ok(await waitUntil(async () => (await listeners()).some((pid) => !listenedBefore.includes(pid)), { timeoutMs: 15_000, everyMs: 200 }), 'a new LISTEN connection')
    // and a long-poll is woken by a message another process stores (this process's own
    // puts wake it without LISTEN): only the NOTIFY through that connection can wake it
    const cursor = acked[acked.length - 1]
    const poll = call(api, 'GET', `/v1/rooms/lobby/messages?wait=20&after=${cursor}`, { token })
    t.ok(await waitUntil(async () => (await operatorMetrics()).longPollsWaiting === 1), 'the long-poll is parked')
    const other = await postgresMessageStore({ url: PG_URL, schema })
    t.teardown(() => other.close())
    const { message: woke } = await other.put({ from: 'bob', room: 'lobby', clientId: 'other-process', body: 'from another server', sentAt: Date.now() })
    const polled = await poll
    t.equal(polled.status, 200)
    t.same(polled.json.messages.map((m: { id: string }) => m.id), [woke.id], 'the long-poll returns the message another process stored')
    t.ok(polled.ms < 5_000, `woken, not timed out (${polled.ms} ms)`)

    const all: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await call(api, 'GET', `/v1/rooms/lobby/messages?limit=200${after ? `&after=${after}` : ''}`, { token })
      if (page.json.messages.length === 0) break
      all.push(...page.json.messages.map((m: { id: string }) => m.id))
      after = page.json.cursor
    }
    t.same(acked.filter(id => !all.includes(id)), [], `every acknowledged send (${acked.length}) is readable`)
  })
}
