// P6: a replayed cell or a cell with one flipped bit is rejected by the hop whose
// layer it touches, changes nothing there (no response, no forwarding, the
// circuit keeps working with correct answers), and is counted in that relay's
// /metrics cellsRejected. The test speaks through the client's own link and
// builds cells with the circuit's per-hop sealers, so it can replay or tamper
// with one inner layer while every outer layer is fresh and authentic.
import t, { type Test } from 'tap'
import { Circuit, ChannelPool } from '../../../src/roles/client/circuit.js'
import type { Channel } from '../../../src/roles/common/channel.js'
import { LAYER_HEADER, forwardBodyMax, forwardSealedLength } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { ChannelCommand, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { DataFlag, encodeData } from '../../../src/onion/cells/relay-msg.js'
import { encodeRequest } from '../../../src/onion/streams/envelope.js'
import { metrics, sleep, startNet, waitUntil } from './fixture.js'

const CLIENT_IP = '127.0.0.77'

t.test('replayed and tampered cells are rejected at the hop that owns the layer', async (t) => {
  const net = await startNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const links = new ChannelPool(CLIENT_IP)
  t.teardown(() => links.close())
  const circuit = await Circuit.build({ path: [...net.descs, net.final.descriptor], links })
  t.teardown(() => circuit.destroy())
  const ch = (circuit as unknown as { link: { ch: Channel } }).link.ch
  const HOPS = circuit.onion.length
  t.equal(HOPS, 4)

  const echo = async (text: string): Promise<void> => {
    const r = await circuit.request({ method: 'POST', path: '/echo', headers: {}, body: Buffer.from(text) }, { timeoutMs: 5000 })
    t.equal(r.body.toString(), text, `the circuit still answers correctly (${text})`)
  }
  await echo('before')

  /** rejection counts at every hop: relays' /metrics, then the final hop's own record */
  const rejections = async (): Promise<number[]> => [
    ...(await Promise.all(net.relays.map(metrics))).map((m) => m.cellsRejected),
    net.final.rejected.length,
  ]

  /**
   * One DATA cell for the final hop (a whole request on stream `streamId`), sealed
   * layer by layer like ClientOnion.wrapForward; `mutate(k, layer)` sees hop k's
   * layer right after it is sealed and may replace it.
   */
  let streamId = 1_000_000
  const wrap = (mutate: (k: number, layer: Buffer) => Buffer = (_k, l) => l): Buffer => {
    const body = encodeData({ streamId: streamId++, flags: DataFlag.END, data: encodeRequest({ method: 'POST', path: '/raw', headers: {}, body: Buffer.from('raw') }) })
    t.ok(body.length <= forwardBodyMax(HOPS))
    const hops = circuit.onion.hops
    let layer = mutate(HOPS, hops[HOPS - 1].forward.seal(RelayCommand.DATA, body, forwardSealedLength(HOPS)))
    for (let k = HOPS - 1; k >= 1; k--) layer = mutate(k, hops[k - 1].forward.seal(RelayCommand.FORWARD, layer, LAYER_HEADER + layer.length))
    return encodeChannelCell(circuit.circId, ChannelCommand.RELAY, layer)
  }

  /** sends a cell that must be rejected at hop `k` only, and checks nothing else happened */
  const expectRejectedAt = async (t: Test, k: number, cell: Buffer): Promise<void> => {
    const before = await rejections()
    const requests = net.final.requests.length
    const cellsIn = ch.cellsIn
    ch.send(cell)
    const want = before.map((n, i) => (i === k - 1 ? n + 1 : n))
    let now = before
    await waitUntil(async () => { now = await rejections(); return now[k - 1] > before[k - 1] }, 5000)
    await sleep(150) // room for anything else the cell might have caused
    now = await rejections()
    t.same(now, want, `rejected at hop ${k} and nowhere else`)
    t.equal(net.final.requests.length, requests, 'the final hop handled no request')
    t.equal(ch.cellsIn, cellsIn, 'no cell came back')
  }

  t.test('an exact copy of a RELAY cell', async (t) => {
    const sent: Buffer[] = []
    const send = ch.send.bind(ch)
    ch.send = (cell: Buffer) => { sent.push(Buffer.from(cell)); send(cell) }
    await echo('captured')
    ch.send = send
    t.ok(sent.length >= 1, 'the request went out as RELAY cells')
    await expectRejectedAt(t, 1, sent[0])
    await expectRejectedAt(t, 1, sent[sent.length - 1])
    await echo('after replay')
  })

  t.test('an inner layer replayed under fresh outer layers', async (t) => {
    // one cell, accepted by every hop; its layers recorded as they were sealed
    const recorded = new Map<number, Buffer>()
    const requests = net.final.requests.length
    ch.send(wrap((k, l) => { recorded.set(k, Buffer.from(l)); return l }))
    t.ok(await waitUntil(() => net.final.requests.length === requests + 1), 'the original cell was served')
    for (let k = 2; k <= HOPS; k++) {
      await expectRejectedAt(t, k, wrap((j, l) => (j === k ? recorded.get(k)! : l)))
    }
    t.same(net.final.rejected.slice(-1), ['MM_ERR_REPLAY'], 'the final hop saw a replay')
    await echo('after inner replays')
  })

  t.test('one flipped bit in each hop\'s layer', async (t) => {
    // counter, length, body ciphertext, tag
    const spots = [(_l: Buffer) => 7, (_l: Buffer) => 9, (_l: Buffer) => 40, (l: Buffer) => l.length - 1]
    for (let k = 1; k <= HOPS; k++) {
      for (const [i, spot] of spots.entries()) {
        const cell = wrap((j, l) => {
          if (j !== k) return l
          const x = Buffer.from(l)
          x[spot(x)] ^= 1 << i
          return x
        })
        await expectRejectedAt(t, k, cell)
      }
      await echo(`after tampering with hop ${k}`)
    }
  })

  t.test('a cell for the final hop sent untampered is still served', async (t) => {
    const requests = net.final.requests.length
    const before = await rejections()
    ch.send(wrap())
    t.ok(await waitUntil(() => net.final.requests.length === requests + 1), 'served: the hand-built cells are valid apart from the mutation')
    t.same(await rejections(), before)
  })
})
