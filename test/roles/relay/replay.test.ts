// P6, in-process over memory channels: a replayed cell or a cell with one flipped bit
// is rejected by the hop whose layer it touches, changes nothing there (no response, no
// forwarding, the circuit keeps working with correct answers), and is counted in that
// relay's cellsRejected (the final hop's in its rejected events). The test builds cells
// with the circuit's per-hop sealers, so it can replay or tamper with one inner layer
// while every outer layer is fresh and authentic.
import t, { type Test } from 'tap'
import { LAYER_HEADER, forwardBodyMax, forwardSealedLength } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { ChannelCommand, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { DataFlag, encodeData } from '../../../src/onion/cells/relay-msg.js'
import { encodeRequest } from '../../../src/onion/streams/envelope.js'
import { settle, until } from '../../helpers/fake-clock.js'
import { RawCircuit } from './raw-circuit.js'
import { inProcessNet } from './harness.js'

t.test('replayed and tampered cells are rejected at the hop that owns the layer', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const circuit = await RawCircuit.build(net, [...net.relays.map((r) => r.d), net.final.d])
  const ch = circuit.ch
  const HOPS = circuit.onion.length
  t.equal(HOPS, 4)

  const echo = async (text: string): Promise<void> => {
    t.equal(await circuit.echo(text), text, `the circuit still answers correctly (${text})`)
  }
  await echo('before')

  /** rejection counts at every hop: the relays' counters, then the final hop's record */
  const rejections = (): number[] => [...net.relays.map((r) => r.core.counters.cellsRejected), net.final.rejected.length]

  /** one DATA cell for the final hop (a whole request), sealed layer by layer; `mutate(k, layer)` may replace hop k's layer */
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
    const before = rejections()
    const requests = net.final.requests.length
    const cellsIn = ch.cellsIn
    const forwarded = net.relays.map((r) => r.core.counters.cellsForwarded)
    ch.send(cell)
    t.ok(await until(() => rejections()[k - 1] > before[k - 1]), `hop ${k} rejected it`)
    await settle() // room for anything else the cell might have caused
    t.same(rejections(), before.map((n, i) => (i === k - 1 ? n + 1 : n)), `rejected at hop ${k} and nowhere else`)
    t.same(net.relays.map((r) => r.core.counters.cellsForwarded), forwarded.map((n, i) => (i < k - 1 ? n + 1 : n)), 'forwarded only by the hops before it')
    t.equal(net.final.requests.length, requests, 'the final hop handled no request')
    t.equal(ch.cellsIn, cellsIn, 'no cell came back')
  }

  await t.test('an exact copy of a RELAY cell', async (t) => {
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

  await t.test('an inner layer replayed under fresh outer layers', async (t) => {
    const recorded = new Map<number, Buffer>()
    const requests = net.final.requests.length
    ch.send(wrap((k, l) => { recorded.set(k, Buffer.from(l)); return l }))
    t.ok(await until(() => net.final.requests.length === requests + 1), 'the original cell was served')
    await circuit.nextBackward() // its response
    for (let k = 2; k <= HOPS; k++) {
      await expectRejectedAt(t, k, wrap((j, l) => (j === k ? recorded.get(k)! : l)))
    }
    t.same(net.final.rejected.slice(-1), ['MM_ERR_REPLAY'], 'the final hop saw a replay')
    await echo('after inner replays')
  })

  await t.test('one flipped bit in each hop\'s layer', async (t) => {
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

  await t.test('a cell for the final hop sent untampered is still served', async (t) => {
    const requests = net.final.requests.length
    const before = rejections()
    ch.send(wrap())
    t.ok(await until(() => net.final.requests.length === requests + 1), 'served: the hand-built cells are valid apart from the mutation')
    t.same(rejections(), before)
  })
})
