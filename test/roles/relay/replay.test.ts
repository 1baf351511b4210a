// P6, in-process over memory channels: a replayed cell or a cell with one flipped bit
// does not open at the hop whose layer it touches (the nonce is the cell's position,
// PROTOCOL §3), so that hop destroys the circuit: DESTROY INTEGRITY back to the client,
// DESTROY onward, nothing forwarded beyond it, nothing handled by the final hop, counted
// in that relay's cellsRejected (the final hop's in its rejected events). The test builds
// cells with the circuit's per-hop sealers, so it can replay or tamper with one inner
// layer while every outer layer is fresh and authentic. A new circuit through the same
// relays works after each attempt.
import t, { type Test } from 'tap'
import { LAYER_HEADER, forwardBodyMax, forwardSealedLength } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { ChannelCommand, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { DataFlag, HopError, encodeData } from '../../../src/onion/cells/relay-msg.js'
import { encodeRequest } from '../../../src/onion/streams/envelope.js'
import { settle, until } from '../../helpers/fake-clock.js'
import { RawCircuit } from './raw-circuit.js'
import { inProcessNet } from './harness.js'

t.test('replayed and tampered cells end the circuit at the hop that owns the layer', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const path = [...net.relays.map((r) => r.d), net.final.d]
  const HOPS = path.length
  const fresh = async (): Promise<RawCircuit> => {
    const c = await RawCircuit.build(net, path)
    t.equal(await c.echo('hello'), 'hello', 'a new circuit through the same relays answers')
    return c
  }

  /** rejection counts at every hop: the relays' counters, then the final hop's record */
  const rejections = (): number[] => [...net.relays.map((r) => r.core.counters.cellsRejected), net.final.rejected.length]

  /** one DATA cell for the final hop (a whole request), sealed layer by layer; `mutate(k, layer)` may replace hop k's layer */
  let streamId = 1_000_000
  const wrap = (circuit: RawCircuit, mutate: (k: number, layer: Buffer) => Buffer = (_k, l) => l): Buffer => {
    const request = encodeRequest({ method: 'POST', path: '/raw', headers: {}, body: Buffer.from('raw') })
    const body = encodeData({ streamId: streamId++, flags: DataFlag.END, offset: 0, total: request.length, data: request })
    t.ok(body.length <= forwardBodyMax(HOPS))
    const hops = circuit.onion.hops
    let layer = mutate(HOPS, hops[HOPS - 1].forward.seal(RelayCommand.DATA, body, forwardSealedLength(HOPS)))
    for (let k = HOPS - 1; k >= 1; k--) layer = mutate(k, hops[k - 1].forward.seal(RelayCommand.FORWARD, layer, LAYER_HEADER + layer.length))
    return encodeChannelCell(circuit.circId, ChannelCommand.RELAY, layer)
  }

  /** sends a cell that must be refused at hop `k`, and checks that the circuit ended there and nothing else happened */
  const expectDestroyedAt = async (t: Test, circuit: RawCircuit, k: number, cell: Buffer): Promise<void> => {
    const before = rejections()
    const requests = net.final.requests.length
    const forwarded = net.relays.map((r) => r.core.counters.cellsForwarded)
    circuit.ch.send(cell)
    const destroy = () => circuit.cells.find((c) => c.circId === circuit.circId && c.cmd === ChannelCommand.DESTROY)
    t.ok(await until(() => destroy() !== undefined), 'the client hears DESTROY')
    t.equal(destroy()!.data[0], HopError.INTEGRITY, 'with reason INTEGRITY')
    await settle() // room for anything else the cell might have caused
    t.same(rejections(), before.map((n, i) => (i === k - 1 ? n + 1 : n)), `refused at hop ${k} and nowhere else`)
    t.same(net.relays.map((r) => r.core.counters.cellsForwarded), forwarded.map((n, i) => (i < k - 1 ? n + 1 : n)), 'forwarded only by the hops before it')
    t.equal(net.final.requests.length, requests, 'the final hop handled no request')
    if (k === HOPS) t.same(net.final.rejected.slice(-1), ['MM_ERR_LAYER_AUTH'], 'the final hop refused the layer')
    const answered = circuit.cells.filter((c) => c.circId === circuit.circId && c.cmd === ChannelCommand.RELAY).length
    circuit.send(HOPS, RelayCommand.DROP, Buffer.alloc(0))
    await settle()
    t.equal(circuit.cells.filter((c) => c.circId === circuit.circId && c.cmd === ChannelCommand.RELAY).length, answered, 'the circuit is gone: nothing more comes back on it')
  }

  await t.test('an exact copy of a RELAY cell', async (t) => {
    for (const which of ['first', 'last'] as const) {
      const circuit = await fresh()
      const sent: Buffer[] = []
      const send = circuit.ch.send.bind(circuit.ch)
      circuit.ch.send = (cell: Buffer) => { sent.push(Buffer.from(cell)); send(cell) }
      t.equal(await circuit.echo('captured'), 'captured')
      circuit.ch.send = send
      t.ok(sent.length >= 1, 'the request went out as RELAY cells')
      await expectDestroyedAt(t, circuit, 1, which === 'first' ? sent[0] : sent[sent.length - 1])
    }
    await fresh()
  })

  await t.test('an inner layer replayed under fresh outer layers', async (t) => {
    for (let k = 2; k <= HOPS; k++) {
      const circuit = await fresh()
      const recorded = new Map<number, Buffer>()
      const requests = net.final.requests.length
      circuit.ch.send(wrap(circuit, (j, l) => { recorded.set(j, Buffer.from(l)); return l }))
      t.ok(await until(() => net.final.requests.length === requests + 1), 'the original cell was served')
      await circuit.nextBackward() // its response
      await expectDestroyedAt(t, circuit, k, wrap(circuit, (j, l) => (j === k ? recorded.get(k)! : l)))
    }
    await fresh()
  })

  await t.test('one flipped bit in each hop\'s layer', async (t) => {
    // length, body ciphertext, tag
    const spots = [(_l: Buffer) => 1, (_l: Buffer) => 40, (l: Buffer) => l.length - 1]
    for (let k = 1; k <= HOPS; k++) {
      for (const [i, spot] of spots.entries()) {
        const circuit = await fresh()
        const cell = wrap(circuit, (j, l) => {
          if (j !== k) return l
          const x = Buffer.from(l)
          x[spot(x)] ^= 1 << i
          return x
        })
        await expectDestroyedAt(t, circuit, k, cell)
      }
    }
    await fresh()
  })

  await t.test('a cell for the final hop sent untampered is served', async (t) => {
    const circuit = await fresh()
    const requests = net.final.requests.length
    const before = rejections()
    circuit.ch.send(wrap(circuit))
    t.ok(await until(() => net.final.requests.length === requests + 1), 'served: the hand-built cells are valid apart from the mutation')
    t.same(rejections(), before)
  })
})
