// Resource bounds of a relay process, as its flags set them: --max-circuits caps the
// circuit table under a flood of real handshakes, refusing BUSY beyond it and evicting no
// live circuit (and the relay keeps serving),
// --circuit-ttl expires idle circuits (their ids can be used again) and
// --sweep-interval then drops their local routing entries. The per-address CREATE rate
// (3/s, burst 90) is tested exactly in-process (from-prev.test.ts, metering.test.ts), the
// full table and the sweep's logic too (relay-core.test.ts).
import t from 'tap'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { ChannelCommand, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import { createCell, metrics, rawChannel, sleep, startNet, waitUntil } from './fixture.js'

t.test('relay bounds', async (t) => {
  const net = await startNet(t, ['127.0.0.11', '127.0.0.12'], {
    extra: (i) => (i === 0 ? ['--max-circuits', '1000', '--create-rate', '100000', '--create-burst', '100000'] : ['--circuit-ttl', '2', '--sweep-interval', '1']),
  })
  const [big, short] = net.descs
  const [bigProc, shortProc] = net.relays

  await t.test('2,000 handshakes against --max-circuits 1000', async (t) => {
    const { ch, cells } = await rawChannel(t, big, '127.0.0.80')
    let max = 0
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        max = Math.max(max, (await metrics(bigProc)).circuits)
        await sleep(20)
      }
    })()
    const N = 2000
    const started = Date.now()
    for (let sent = 0; sent < N;) {
      for (let i = 0; i < 200; i++) ch.send(createCell(big, ++sent))
      t.ok(await waitUntil(() => cells.length >= sent, { timeoutMs: 20_000 }), `answers to ${sent} CREATEs`)
    }
    sampling = false
    await sampler
    const created = cells.filter((c) => c.cmd === ChannelCommand.CREATED).length
    t.equal(created, 1000, 'the first 1000 handshakes were answered with CREATED')
    t.equal(cells.filter((c) => c.cmd === ChannelCommand.DESTROY && c.data[0] === HopError.BUSY).length, N - 1000, 'the rest with DESTROY BUSY (PROTOCOL §5.5)')
    t.ok(max <= 1000, `circuits never exceeded 1000 (max seen ${max})`)
    t.ok(max >= 900, 'the table did fill up to its bound (the flood was real)')
    t.equal((await metrics(bigProc)).circuits, 1000, 'the table is full, not over')
    t.comment(`${N} handshakes in ${Date.now() - started} ms`)

    // none was evicted: the oldest circuit is still there, and leaving makes room
    t.same(cells.filter((c) => c.cmd === ChannelCommand.CREATED).map((c) => c.circId).slice(0, 3), [1, 2, 3], 'the circuits kept are the first ones')
    t.notOk(ch.closed, 'the flooding channel itself was not dropped')
    ch.send(encodeChannelCell(1, ChannelCommand.DESTROY, Buffer.from([0])))
    t.ok(await waitUntil(async () => (await metrics(bigProc)).circuits === 999), 'a DESTROY frees one place')

    const channels = new ChannelPool('127.0.0.77')
    t.teardown(() => channels.close())
    const c = await Circuit.build({ path: [big, net.final.descriptor], channels })
    const r = await c.request({ method: 'POST', path: '/after-flood', headers: {}, body: Buffer.from('served') })
    t.equal(r.body.toString(), 'served', 'a fresh circuit through the flooded relay works end to end')
    c.destroy()
  })

  await t.test('--circuit-ttl 2: idle circuits expire', async (t) => {
    const { ch, cells } = await rawChannel(t, short, '127.0.0.79')
    for (let i = 1; i <= 20; i++) ch.send(createCell(short, i))
    t.ok(await waitUntil(() => cells.length >= 20))
    t.equal(cells.filter((c) => c.cmd === ChannelCommand.CREATED).length, 20)
    const channels = new ChannelPool('127.0.0.78')
    t.teardown(() => channels.close())
    const c = await Circuit.build({ path: [short, net.final.descriptor], channels })
    t.equal((await c.request({ method: 'GET', path: '/x', headers: {}, body: Buffer.alloc(0) })).status, 200)
    t.ok((await metrics(shortProc)).circuits >= 21, 'the circuits are live')

    await sleep(2000)
    t.ok(await waitUntil(async () => (await metrics(shortProc)).circuits === 0, { timeoutMs: 2500 }), 'all circuits are gone ~3 s after they went idle')
    t.ok(await waitUntil(async () => (await metrics(shortProc)).tracked === 0, { timeoutMs: 2500 }), 'and the 1 s sweep forgot their routing entries')
    t.ok((await metrics(shortProc)).channels >= 2, 'while the channels themselves stay open')
    const err = await c.request({ method: 'GET', path: '/late', headers: {}, body: Buffer.alloc(0) }, { timeoutMs: 3000 }).then(() => null, (e) => e)
    t.equal(err?.code, 'MM_ERR_CIRCUIT_CLOSED', 'the client learns that its expired circuit is gone')

    // a cell on an expired circuit is answered with DESTROY, after which its id is free again
    const n = cells.length
    ch.send(encodeChannelCell(5, ChannelCommand.RELAY, Buffer.alloc(100)))
    t.ok(await waitUntil(() => cells.length > n))
    t.same([cells[n].circId, cells[n].cmd], [5, ChannelCommand.DESTROY])
    ch.send(createCell(short, 5))
    t.ok(await waitUntil(() => cells.length > n + 1 || ch.closed))
    t.notOk(ch.closed, 'reusing the id of a destroyed circuit does not close the channel')
    t.equal(cells[n + 1]?.cmd, ChannelCommand.CREATED, 'the id is used for a new circuit')

    const again = await Circuit.build({ path: [short, net.final.descriptor], channels })
    t.equal((await again.request({ method: 'GET', path: '/again', headers: {}, body: Buffer.alloc(0) })).status, 200, 'a rebuilt circuit works')
    again.destroy()
  })
})
