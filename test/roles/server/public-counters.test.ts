// No live counters on public ports (issue 14): before, every relay and the server served
// exact real-time counts (circuits, cells forwarded, requests served) to anyone, and
// polling them every few ms showed which relays carried a given circuit. Now /healthz and
// /livez say up or down and nothing countable: the test fetches them before and after
// real traffic (circuits through a relay process, registers at a server process) and
// finds no number in them and no change. The exact counts remain for the operator:
// /metrics with the token from the role's data dir, refused without it or with another.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { fetchOperatorJson, readOperatorCredentials, readOperatorToken } from '../../../src/roles/common/operator.js'
import { selfSignedCertificate } from '../../../src/onion/crypto/certificate.js'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { tmp } from '../../helpers/net.js'
import { startServerProc, stopProc } from '../../helpers/network.js'
import { startNet } from '../relay/fixture.js'

const agent = new Agent({ connect: { rejectUnauthorized: false } }) // test-only: what is tested is the answer, not the TLS identity
t.teardown(() => agent.close())

async function get (url: string, token?: string): Promise<{ status: number, json: any, text: string }> {
  const res = await request(url, { dispatcher: agent, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.statusCode, json, text }
}

/** every number anywhere in a JSON value */
function numbersIn (v: unknown): number[] {
  if (typeof v === 'number') return [v]
  if (Array.isArray(v)) return v.flatMap(numbersIn)
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(numbersIn)
  return []
}

async function publicFaces (base: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const path of ['/healthz', '/livez']) {
    const r = await get(base + path)
    if (r.status !== 200) throw new Error(`${path}: ${r.status}`)
    out[path] = r.text
  }
  return out
}

async function operatorPath (t: Test, base: string, dataDir: string): Promise<Record<string, number>> {
  const none = await get(`${base}/metrics`)
  t.same([none.status, none.json?.error?.code], [401, 'MM_ERR_OPERATOR_TOKEN'], '/metrics without the token is refused')
  const wrong = await get(`${base}/metrics`, 'A'.repeat(43))
  t.same([wrong.status, wrong.json?.error?.code], [401, 'MM_ERR_OPERATOR_TOKEN'], '/metrics with another token is refused')
  const right = await get(`${base}/metrics`, readOperatorToken(dataDir))
  t.equal(right.status, 200, '/metrics with the operator token answers')
  // the operator tool sends the token only over TLS pinned to the role's own certificate
  const creds = readOperatorCredentials(dataDir)
  t.ok(await fetchOperatorJson(`${base}/metrics`, creds), 'the pinned operator fetch reads the counters')
  const other = selfSignedCertificate({ commonName: 'not-the-role', altNames: ['127.0.0.41', '127.0.0.1'], days: 1 }).certPem
  t.equal(await fetchOperatorJson(`${base}/metrics`, { token: creds.token, certPem: other }), null, 'and refuses a role whose certificate is not the pinned one')
  return right.json
}

t.test('a relay: public health shows nothing countable; the operator sees the circuits', async (t) => {
  const net = await startNet(t, ['127.0.0.41'])
  const [relay] = net.relays
  const base = `https://${relay.host}:${relay.port}`
  const before = await publicFaces(base)
  const m0 = await operatorPath(t, base, relay.dataDir)

  const channels = new ChannelPool('127.0.0.42')
  t.teardown(() => channels.close())
  for (let i = 0; i < 3; i++) {
    const c = await Circuit.build({ path: [net.descs[0], net.final.descriptor], channels })
    t.equal((await c.request({ method: 'POST', path: '/x', headers: {}, body: Buffer.from(`traffic ${i}`) })).status, 200, 'honest traffic through the relay')
    if (i < 2) c.destroy()
  }

  const after = await publicFaces(base)
  t.same(after, before, '/healthz and /livez are byte for byte what they were before the traffic')
  for (const [path, text] of Object.entries(after)) t.same(numbersIn(JSON.parse(text)), [], `${path} holds no number at all: ${text}`)
  const m1 = await operatorPath(t, base, relay.dataDir)
  t.equal(m1.circuitsCreated - m0.circuitsCreated, 3, 'the operator counters saw the three circuits')
  t.ok(m1.cellsForwarded > m0.cellsForwarded, 'and the cells')
})

t.test('a server: public health shows nothing countable; the operator sees users and requests', async (t) => {
  const dataDir = join(tmp('mm-counters-'), 'server')
  const srv = await startServerProc({ dataDir, args: ['--direct-api', '0'] })
  t.teardown(() => stopProc(srv.proc))
  const before = await publicFaces(srv.url)
  const m0 = await operatorPath(t, srv.url, dataDir)
  for (const name of ['gina', 'hank', 'ivan']) {
    const res = await fetch(`${srv.directApiUrl}/v1/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: name, password: 'correct horse battery' }) })
    t.equal(res.status, 201, `register ${name}`)
  }
  const after = await publicFaces(srv.url)
  t.same(after, before, '/healthz and /livez did not change with three registrations')
  for (const [path, text] of Object.entries(after)) t.same(numbersIn(JSON.parse(text)), [], `${path} holds no number at all: ${text}`)
  const m1 = await operatorPath(t, srv.url, dataDir)
  t.same([m0.users, m1.users], [0, 3], 'the operator counters saw the three users')
})
