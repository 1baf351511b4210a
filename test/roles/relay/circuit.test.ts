// Three real relay processes started from the CLI, a final hop with an echo
// handler, and a client circuit through them: responses come back (several at
// once, multi-cell), each relay's trace shows only its two neighbours (P2),
// every cell on every channel has the same size (P3), relay-to-relay channels are
// authenticated over real TLS (AUTH, docs/PROTOCOL.md §2.3), and the circuit tears down.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { metrics, startNet, waitUntil } from './fixture.js'
import { tmp } from '../../helpers/net.js'

const CLIENT_IP = '127.0.0.77'

t.test('a request through three relays and back', async (t) => {
  const dir = tmp()
  const hosts = ['127.0.0.11', '127.0.0.12', '127.0.0.13']
  const traces = hosts.map((_, i) => join(dir, `trace-${i}.jsonl`))
  // ready once every relay serves the consensus listing all three and the final hop
  const net = await startNet(t, hosts, { trace: (i) => traces[i] })
  const { relays, descs, final: echo } = net

  const channels = new ChannelPool(CLIENT_IP)
  t.teardown(() => channels.close())
  const circuit = await Circuit.build({ path: [...descs, echo.descriptor], channels })
  t.equal(circuit.onion.length, 4, 'four hops: three relays and the final hop')

  const small = await circuit.request({ method: 'POST', path: '/echo', headers: {}, body: Buffer.from('hello onion') })
  t.equal(small.status, 200)
  t.equal(small.body.toString(), 'hello onion')
  t.equal(small.headers['x-path'], '/echo')

  const big = Buffer.alloc(20_000, 7)
  const many = await Promise.all([1, 2, 3, 4, 5].map((i) => circuit.request({ method: 'POST', path: `/p${i}`, headers: {}, body: i === 3 ? big : Buffer.from(`m${i}`) })))
  t.same(many.map((r) => r.headers['x-path']), ['/p1', '/p2', '/p3', '/p4', '/p5'], 'concurrent requests each get their own response')
  t.ok(many[2].body.equals(big), 'a 20 kB body crosses as many cells and comes back whole')

  // AUTH over TLS: the middle and exit relays each accepted one channel from a listed relay
  const counts = await Promise.all(relays.map((r) => metrics(r)))
  t.same(counts.map((m) => [m.channelsAuthenticated, m.authRefused]), [[0, 0], [1, 0], [1, 0]], 'relay-to-relay channels proved their identity; the client\'s did not')

  circuit.destroy()
  // the DESTROY has reached every hop: no relay and not the final hop holds the circuit
  t.ok(await waitUntil(async () => echo.endpoint.circuits() === 0 && (await Promise.all(relays.map((r) => metrics(r)))).every((m) => m.circuits === 0)), 'the circuit is gone at every hop')

  // P1 at the final hop: only the exit relay's address ever connected
  t.ok(echo.peers.length > 0)
  t.ok(echo.peers.every((p) => p.startsWith('127.0.0.13:')), 'the final hop saw only the exit relay')

  // P2 + P3 from the relays' traces
  const read = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  // each relay appends its trace through a write stream: wait until every line is whole
  t.ok(await waitUntil(() => traces.every((f) => readFileSync(f, 'utf8').endsWith('\n'))), 'every trace ends with a whole line')
  const seen = traces.map(read)
  const ips = (rows: any[]) => new Set(rows.flatMap((r) => [r.from, r.to]).filter((a) => a !== '-').map((a: string) => a.replace(/:\d+$/, '')))
  t.same([...ips(seen[0])].sort(), [CLIENT_IP, '127.0.0.12'].sort(), 'entry relay sees the client and the middle relay only')
  t.same([...ips(seen[1])].sort(), ['127.0.0.11', '127.0.0.13'].sort(), 'middle relay sees only its two neighbours')
  t.same([...ips(seen[2])].sort(), ['127.0.0.12', '127.0.0.20'].sort(), 'exit relay sees the middle relay and the server only')
  t.notOk(seen.slice(1).some((rows) => rows.some((r) => String(r.from).startsWith(CLIENT_IP) || String(r.to).startsWith(CLIENT_IP))), 'no relay but the entry ever sees the client address')
  const sizes = new Set(seen.flat().filter((r) => r.dir !== 'create').map((r) => r.size))
  t.same([...sizes], [CELL_SIZE], 'every relayed cell on every channel is the same size')
})
