// The cell flood and the CREATE flood together against a real relay process (docs/PROTOCOL.md
// §5.5; the OS matters here: real sockets, real RSS). One client channel carries honest
// circuits and an attacking one; the attacker EXTENDs towards a listed hop that accepts TCP
// and never answers TLS (a stalled next hop), then pushes 200,000 cells (≈400 MiB) behind
// that EXTEND, while another address floods CREATEs. Before §5.5 this grew the relay's RSS
// by ~575 MiB. Now: the attacking circuit ends at its queue cap (DESTROY BUSY, ≤ 2 MiB
// queued), the relay's RSS (/proc/<pid>/status VmRSS) stays under its memory budget
// (--max-queued-mem, the default 256 MiB), the CREATE flood gets its burst and then BUSY,
// and honest circuits on the same relay and the same channel keep working throughout.
// Measured here: +128..134 MiB of RSS while 391 MiB pass through, flat afterwards; that
// is V8's young generation growing under the allocation rate of TLS and WebSocket frames
// (the same run with --max-semi-space-size=2 grew +37 MiB), not queued cells.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { HopError, encodeExtend } from '../../../src/onion/cells/relay-msg.js'
import { ClientOnion } from '../../../src/onion/circuits/client-onion.js'
import { clientFinish, clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { randomBytes } from 'node:crypto'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { hopDescriptor, loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { tmp } from '../../helpers/net.js'
import { createCell, rawChannel, sleep, startNet, waitUntil } from './fixture.js'

const MIB = 1024 * 1024
const BUDGET_MIB = 256
const CELLS = 200_000

const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024

t.test('200,000 cells behind a stalled EXTEND and a CREATE flood, against a relay process', async (t) => {
  // a listed hop that accepts TCP and then says nothing (no TLS): the EXTEND to it stalls
  const held: Socket[] = []
  const hole = createServer((s) => { held.push(s); s.on('error', () => {}) })
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.14', resolve))
  t.teardown(() => { for (const s of held) s.destroy(); hole.close() })
  const holeDesc = hopDescriptor(loadOrCreateIdentity(tmp('mm-hole-'), '127.0.0.14'), { role: 'relay', nickname: 'hole', host: '127.0.0.14', port: (hole.address() as { port: number }).port, lifetimeMs: 3600_000 })

  // the relay as deployed: V8's default GC. The devnet's --single-threaded-gc (a CPU choice for many
  // roles on few cores) lets the heap grow about twice as far under this allocation rate (+266 MiB
  // against +130 MiB measured here), which says nothing about the relay's queues.
  const net = await startNet(t, ['127.0.0.11'], { extra: () => ['--max-queued-mem', String(BUDGET_MIB), '--extend-timeout', '60'], nodeArgs: ['--no-single-threaded-gc'] })
  const [relay] = net.descs
  const pid = net.relays[0].child.pid!
  await net.publish([relay, holeDesc])

  const channels = new ChannelPool('127.0.0.90')
  t.teardown(() => channels.close())
  const echo = async (c: Circuit, text: string): Promise<string> => (await c.request({ method: 'POST', path: '/echo', headers: {}, body: Buffer.from(text) })).body.toString()
  const honest = await Circuit.build({ path: [relay, net.final.descriptor], channels })
  t.equal(await echo(honest, 'before'), 'before')

  // the attacking circuit, on the very channel the honest one uses
  const cc = await channels.get(relay, 10_000)
  const circId = cc.newCircId()
  const got: ChannelCell[] = []
  cc.circuits.set(circId, (cell) => got.push(cell))
  const first = clientStart({ identityKey: Buffer.from(relay.identityKey, 'base64') })
  cc.ch.send(encodeChannelCell(circId, ChannelCommand.CREATE, first.create))
  t.ok(await waitUntil(() => got.length > 0), 'the relay answered the CREATE')
  t.equal(got[0].cmd, ChannelCommand.CREATED)
  const onion = new ClientOnion()
  onion.addHop(Buffer.from(relay.fingerprint, 'hex'), clientFinish(first.state, got[0].data))
  const ext = encodeExtend({ fingerprint: Buffer.from(holeDesc.fingerprint, 'hex'), host: holeDesc.host, port: holeDesc.port, create: clientStart({ identityKey: Buffer.from(holeDesc.identityKey, 'base64') }).create })
  cc.ch.send(encodeChannelCell(circId, ChannelCommand.RELAY, onion.wrapForward(1, RelayCommand.EXTEND, ext)))
  await sleep(200)

  const baseline = rssOf(pid)
  let peak = baseline
  let sampling = true
  const sampler = (async () => { while (sampling) { peak = Math.max(peak, rssOf(pid)); await sleep(10) } })()

  // the CREATE flood, from another address, at the same time
  const creates = await rawChannel(t, relay, '127.0.0.91')
  const createFlood = (async () => { for (let i = 1; i <= 2000; i++) { creates.ch.send(createCell(relay, i)); if (i % 200 === 0) await sleep(1) } })()

  // the cell flood: every cell a RELAY cell of the attacking circuit (the relay can only
  // queue it behind the EXTEND); sent as fast as this channel drains, without our own
  // send queue ever holding more than one batch
  const junk = encodeChannelCell(circId, ChannelCommand.RELAY, randomBytes(CELL_SIZE - 5))
  const echoes: string[] = []
  for (let sent = 0; sent < CELLS;) {
    for (let i = 0; i < 400; i++, sent++) cc.ch.send(junk)
    while (cc.ch.pendingBytes > 0 && !cc.ch.closed) await new Promise((resolve) => setImmediate(resolve))
    if (sent % 40_000 === 0) echoes.push(await echo(honest, `during ${sent}`))
  }
  t.notOk(cc.ch.closed, 'the shared client channel survived the flood')
  await createFlood
  t.ok(await waitUntil(() => creates.cells.length >= 2000, { timeoutMs: 30_000 }), 'every CREATE of the flood was answered')
  await sleep(500)
  sampling = false
  await sampler

  t.same(echoes, [40_000, 80_000, 120_000, 160_000, 200_000].map((n) => `during ${n}`), 'the honest circuit on the same channel answered throughout the flood')
  t.same(got.slice(1).map((c) => [c.cmd, c.data[0]]), [[ChannelCommand.DESTROY, HopError.BUSY]], 'the attacking circuit was ended once, DESTROY BUSY (its queue cap), its later cells dropped unanswered')
  const growth = peak - baseline
  t.comment(`relay RSS ${Math.round(baseline / MIB)} MiB before, peak ${Math.round(peak / MIB)} MiB (+${Math.round(growth / MIB)} MiB) for ${CELLS} cells (${Math.round(CELLS * CELL_SIZE / MIB)} MiB)`)
  t.ok(growth < BUDGET_MIB * MIB, `the relay's RSS grew by less than its ${BUDGET_MIB} MiB budget (+${Math.round(growth / MIB)} MiB)`)
  const created = creates.cells.filter((c) => c.cmd === ChannelCommand.CREATED).length
  const busy = creates.cells.filter((c) => c.cmd === ChannelCommand.DESTROY && c.data[0] === HopError.BUSY).length
  t.ok(created >= 90 && created < 200, `the CREATE flood got its burst of 90 and the rate's few more (${created})`)
  t.equal(created + busy, 2000, 'the rest was refused BUSY')

  t.equal(await echo(honest, 'after'), 'after', 'the honest circuit still works')
  const fresh = await Circuit.build({ path: [relay, net.final.descriptor], channels })
  t.equal(await echo(fresh, 'fresh'), 'fresh', 'and a new circuit on the same channel builds and works')
  fresh.destroy()
  honest.destroy()
})
