// Relays sharing Redis (a test network of relay/fixture.ts): the entry relay A runs with --sessions redis:// (a unique key
// prefix, deleted at the end) through a cuttable TCP proxy; B and C keep sessions in
// memory. A circuit A→B→C→final survives A's process being replaced (A2: same data
// dir, so the same identity, same port, same Redis): the client reattaches its entry
// channel and keeps the circuit id and keys; a cell captured before the switch is
// refused by A2 (the circuit's position lives in Redis, PROTOCOL §4), which ends that
// circuit (DESTROY INTEGRITY), and a new one goes on. Then Redis "goes down" for A2
// alone: builds fail at once (DESTROY BUSY), /healthz answers 503
// MM_ERR_STORE_UNAVAILABLE, and service resumes when the proxy is restored.
import t from 'tap'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { tcpProxy } from '../../helpers/tcp-proxy.js'
import { REDIS_URL, reachable, redisCleanup } from '../../storage/backends.js'
import { metrics, startNet, waitUntil } from './fixture.js'

const redisUp = await reachable(REDIS_URL)
const CLIENT_IP = '127.0.0.77'
const A_HOST = '127.0.0.31'

/** GET over HTTPS to a hop's self-signed face (the project's fetch for signature-checked documents) */
async function httpsStatus (url: string): Promise<{ status: number, json: any }> {
  const res = await fetchDocument(url)
  return { status: res.status, json: JSON.parse(res.text) }
}

if (!redisUp) {
  t.comment(`SKIPPED: relay failover over Redis (${REDIS_URL} not reachable)`)
  t.test('relay failover over Redis', { skip: `${REDIS_URL} not reachable` }, async () => {})
} else {
  t.test('a circuit survives its entry relay process being replaced (shared Redis sessions)', async t => {
    const prefix = `mm:test:failover:${process.pid}:${Date.now()}:`
    const proxy = await tcpProxy({ host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) })
    t.teardown(async () => {
      await proxy.close()
      await redisCleanup(REDIS_URL, prefix)
    })
    // the test network (relay/fixture.ts): A keeps its sessions in Redis through the proxy
    const net = await startNet(t, [A_HOST, '127.0.0.32', '127.0.0.33'], {
      finalHost: '127.0.0.34',
      extra: (i) => [...(i === 0 ? ['--sessions', proxy.via(REDIS_URL), '--sessions-prefix', prefix] : []), '--reattach-grace', '30'],
    })
    const echo = net.final
    const descs = net.descs
    const aDesc = descs[0]
    const [a1] = net.relays
    const { port: aPort, dataDir: aDir } = a1

    const channels = new ChannelPool(CLIENT_IP)
    t.teardown(() => channels.close())
    const circuit = await Circuit.build({ path: [...descs, echo.descriptor], channels, reattachable: true })
    const link = (circuit as any).channel
    const sent: Buffer[] = []
    const origSend = link.ch.send.bind(link.ch)
    link.ch.send = (cell: Buffer) => { sent.push(Buffer.from(cell)); origSend(cell) }
    const before = await circuit.request({ method: 'POST', path: '/before', headers: {}, body: Buffer.from('one') })
    t.equal(before.body.toString(), 'one', 'the circuit works through A1')
    t.ok(sent.length >= 1, 'a cell to A1 was captured')
    const captured = sent[sent.length - 1]
    const aStore = await (async () => {
      const { Redis } = await import('ioredis')
      const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
      await r.connect()
      try { return await r.keys(`${prefix}*`) } finally { r.disconnect() }
    })()
    t.ok(aStore.some(k => k.includes(`r:${CLIENT_IP}:${circuit.circId}`)), 'A keeps the circuit in Redis under <client ip>:<circId>')

    const detached = new Promise(resolve => circuit.once('detached', resolve))
    t.equal(await a1.kill('SIGTERM'), 0, 'A1 exits cleanly on SIGTERM')
    await detached
    t.equal(circuit.detached, true, 'the client sees its circuit detached, not closed')
    await t.rejects(circuit.request({ method: 'GET', path: '/x', headers: {}, body: Buffer.alloc(0) }), { code: 'MM_ERR_CIRCUIT_DETACHED' })

    await net.restart(0) // A2: same data dir (identity), port and Redis
    await circuit.reattach(channels)
    t.equal(circuit.detached, false)
    const after = await circuit.request({ method: 'POST', path: '/after', headers: {}, body: Buffer.from('two') })
    t.equal(after.body.toString(), 'two', 'the same circuit (id and keys) carries a request through A2')
    t.equal(after.headers['x-path'], '/after')

    const served = echo.requests.length
    const m0 = await metrics({ host: A_HOST, port: aPort, dataDir: aDir })
    const closed = new Promise<Error>(resolve => circuit.once('closed', resolve))
    ;(circuit as any).channel.ch.send(captured)
    t.ok(await waitUntil(async () => (await metrics({ host: A_HOST, port: aPort, dataDir: aDir })).cellsRejected > m0.cellsRejected), 'A2 rejects the cell replayed from before the switch')
    const m1 = await metrics({ host: A_HOST, port: aPort, dataDir: aDir })
    t.equal(m1.cellsForwarded, m0.cellsForwarded, 'the replayed cell was not forwarded')
    t.match(await closed, { code: 'MM_ERR_CIRCUIT_INTEGRITY' }, 'and the circuit ends: DESTROY INTEGRITY reaches the client')
    // the DESTROY went on to the final hop, and the replayed cell never did
    t.ok(await waitUntil(() => echo.endpoint.circuits() === 0), 'the final hop dropped the circuit')
    t.equal(echo.requests.length, served, 'the final hop saw no duplicate request')
    const circuit2 = await Circuit.build({ path: [...descs, echo.descriptor], channels })
    t.equal((await circuit2.request({ method: 'POST', path: '/still', headers: {}, body: Buffer.from('three') })).body.toString(), 'three', 'a new circuit through A2 works after the replay')

    // a NAT neighbour: a CREATE with a circuit id in use from this address is refused, not merged
    const { rawChannel, createCell } = await import('./fixture.js')
    const { ChannelCommand } = await import('../../../src/onion/cells/channel-cell.js')
    const { HopError } = await import('../../../src/onion/cells/relay-msg.js')
    const raw = await rawChannel(t, aDesc, CLIENT_IP)
    raw.ch.send(createCell(aDesc, circuit2.circId))
    t.ok(await waitUntil(() => raw.cells.length > 0))
    t.same([raw.cells[0].cmd, raw.cells[0].data[0]], [ChannelCommand.DESTROY, HopError.IN_USE], 'DESTROY IN_USE')
    t.equal((await circuit2.request({ method: 'POST', path: '/mine', headers: {}, body: Buffer.from('four') })).body.toString(), 'four', 'the owner\'s circuit is untouched')

    // Redis unreachable for A2 alone
    proxy.cut()
    const started = Date.now()
    const err = await Circuit.build({ path: [...descs, echo.descriptor], channels, timeoutMs: 8_000 }).then(() => null, e => e)
    t.equal(err?.code, 'MM_ERR_CIRCUIT_BUILD', 'a build through A2 fails')
    t.match(err?.message, /BUSY/, 'refused as BUSY')
    t.ok(Date.now() - started < 6_000, `quickly (${Date.now() - started} ms), not at the build timeout`)
    const health = await httpsStatus(`https://${A_HOST}:${aPort}/healthz`)
    t.equal(health.status, 503, '/healthz answers 503 while the store is down')
    t.equal(health.json.error?.code, 'MM_ERR_STORE_UNAVAILABLE')
    t.equal((await httpsStatus(`https://${A_HOST}:${aPort}/livez`)).status, 200, '/livez: alive, only waiting for its store')
    proxy.restore()
    t.ok(await waitUntil(async () => (await httpsStatus(`https://${A_HOST}:${aPort}/healthz`)).status === 200, { timeoutMs: 10_000, everyMs: 200 }), 'healthy again once Redis is back')
    const again = await Circuit.build({ path: [...descs, echo.descriptor], channels })
    t.equal((await again.request({ method: 'POST', path: '/back', headers: {}, body: Buffer.from('five') })).body.toString(), 'five', 'a new circuit works after the outage')
    again.destroy()
    circuit.destroy()
  })
}
