// ClientOnion ↔ HopState over a 4-hop circuit in memory (client, 3 relays, the final
// hop) built with real CREATE/EXTEND handshakes (docs/PROTOCOL.md §3–§5): each hop peels
// exactly its layer, every cell on every link is CELL_DATA long (P3), backward cells say
// which hop made them, and a flipped bit or a replay is refused at the hop it reaches (P6).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { BACKWARD_BODY, CELL_DATA, LAYER_OVERHEAD, MAX_HOPS, forwardBodyMax, forwardSealedLength } from '../../../src/onion/cells/constants.js'
import { RelayCommand, layerLength } from '../../../src/onion/cells/layer.js'
import { ClientOnion } from '../../../src/onion/circuits/client-onion.js'
import { HopState } from '../../../src/onion/circuits/hop-state.js'
import { buildChain, identities, repad } from './chain.js'
import { codeOf, flipBit, tally } from '../helpers.js'

const ids = identities(4)
const keysOf = () => ({ forward: randomBytes(32), backward: randomBytes(32) })

t.test('a 4-hop circuit builds with real handshakes; the build itself uses whole cells only', async t => {
  const c = buildChain(ids)
  t.equal(c.onion.length, 4)
  t.ok(c.sizes.length > 10)
  t.same(tally(c.sizes.map(String)), { [CELL_DATA]: c.sizes.length }, 'every channel cell carried CELL_DATA bytes')
})

t.test('forward: each hop peels exactly its layer; bodies re-padded to CELL_DATA', async t => {
  const c = buildChain(ids)
  for (let k = 1; k <= 4; k++) {
    const body = Buffer.from(`to hop ${k}: ` + 'x'.repeat(k * 100))
    const cell = c.onion.wrapForward(k, RelayCommand.DATA, body)
    t.equal(cell.length, CELL_DATA)
    const seen: Array<{ hop: number, len: number }> = []
    const got = c.forward(cell, 1, (h, d) => { seen.push({ hop: h, len: layerLength(d) }); return d })
    t.equal(got.hop, k, `DATA kept by hop ${k}`)
    t.equal(got.cmd, RelayCommand.DATA)
    t.same(got.body, body, 'exact body')
    t.same(seen.map((s) => s.hop), Array.from({ length: k }, (_, i) => i + 1), 'passes hops 1..k and no further')
    // the layer at hop h is forwardSealedLength(h) + prefix + tag: one LAYER_OVERHEAD less per hop
    t.same(seen.map((s) => s.len), seen.map((s) => forwardSealedLength(s.hop) + 26), 'each layer is one overhead shorter')
  }
  t.same(tally(c.sizes.map(String)), { [CELL_DATA]: c.sizes.length }, 'P3: every cell on every link was CELL_DATA')
})

t.test('forward: the largest body for each hop fits; one byte more is refused', async t => {
  const c = buildChain(ids)
  for (let k = 1; k <= 4; k++) {
    const body = randomBytes(forwardBodyMax(k))
    t.same(c.forward(c.onion.wrapForward(k, RelayCommand.DATA, body)).body, body)
    t.equal(codeOf(() => c.onion.wrapForward(k, RelayCommand.DATA, Buffer.alloc(forwardBodyMax(k) + 1))), 'MM_ERR_LENGTH')
  }
  t.equal(codeOf(() => c.onion.wrapForward(0, RelayCommand.DATA, Buffer.alloc(1))), 'MM_ERR_CIRCUIT')
  t.equal(codeOf(() => c.onion.wrapForward(5, RelayCommand.DATA, Buffer.alloc(1))), 'MM_ERR_CIRCUIT')
})

t.test('backward: originate at hop k, wrap at earlier hops, the client reports hop k', async t => {
  const c = buildChain(ids)
  for (let k = 1; k <= 4; k++) {
    for (const cmd of [RelayCommand.DATA, RelayCommand.ERROR, RelayCommand.EXTENDED]) {
      const body = randomBytes(1 + k * 50)
      const u = c.onion.unwrapBackward(c.backward(k, cmd, body))
      t.equal(u.hop, k)
      t.equal(u.cmd, cmd)
      t.same(u.body, body)
    }
    const full = randomBytes(BACKWARD_BODY)
    t.same(c.onion.unwrapBackward(c.backward(k, RelayCommand.DATA, full)).body, full, `a full BACKWARD_BODY from hop ${k}`)
  }
  t.equal(codeOf(() => c.hops[3].originate(RelayCommand.DATA, Buffer.alloc(BACKWARD_BODY + 1))), 'MM_ERR_LENGTH')
  t.same(tally(c.sizes.map(String)), { [CELL_DATA]: c.sizes.length }, 'P3 backward too')
})

t.test('a flipped bit is refused at the hop it reaches, which then still takes the good cell', async t => {
  const c = buildChain(ids)
  for (let i = 1; i <= 4; i++) {
    const cell = c.onion.wrapForward(4, RelayCommand.DATA, Buffer.from('payload'))
    let cur = cell
    for (let h = 1; h < i; h++) cur = repad(c.hops[h - 1].peel(cur).body)
    const before = c.hops[i - 1].serialize()
    const codes = [0, 80, 81, 200, 8 * 500 + 3, 8 * (layerLength(cur) - 1)].map((bit) => codeOf(() => c.hops[i - 1].peel(flipBit(cur, bit))))
    t.same(tally(codes), { MM_ERR_LAYER_AUTH: 6 }, `hop ${i}: tampered layer refused`)
    t.same(c.hops[i - 1].serialize(), before, `hop ${i}: state unchanged`)
    t.equal(c.forward(cur, i).hop, 4, `hop ${i}: the good cell still goes through to hop 4`)
  }
})

t.test('a replayed cell is refused at the first hop; a reordered one within the window is not', async t => {
  const c = buildChain(ids)
  const a = c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('a'))
  const b = c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('b'))
  t.same(c.forward(b).body.toString(), 'b', 'b before a')
  t.same(c.forward(a).body.toString(), 'a', 'a late but within the window')
  t.equal(codeOf(() => c.forward(a)), 'MM_ERR_REPLAY', 'replay at hop 1')
  // a hop-1-peeled copy replayed straight at hop 2
  const d = c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('d'))
  const atHop2 = repad(c.hops[0].peel(d).body)
  t.same(c.forward(atHop2, 2).body.toString(), 'd')
  t.equal(codeOf(() => c.forward(atHop2, 2)), 'MM_ERR_REPLAY', 'replay at hop 2')
  // backward replay at the client
  const back = c.backward(4, RelayCommand.DATA, Buffer.from('r'))
  c.onion.unwrapBackward(back)
  t.equal(codeOf(() => c.onion.unwrapBackward(back)), 'MM_ERR_REPLAY', 'backward replay refused by the client')
  const flipped = flipBit(c.backward(4, RelayCommand.DATA, Buffer.from('s')), 8 * 40)
  t.equal(codeOf(() => c.onion.unwrapBackward(flipped)), 'MM_ERR_LAYER_AUTH', 'backward tamper refused by the client')
})

t.test('MAX_HOPS: an 8-hop circuit fits both directions in one cell; a 9th hop is refused', async t => {
  const onion = new ClientOnion()
  const hops: HopState[] = []
  for (let i = 0; i < MAX_HOPS; i++) {
    const k = keysOf()
    hops.push(new HopState({ forward: Buffer.from(k.forward), backward: Buffer.from(k.backward) }))
    onion.addHop(Buffer.alloc(32, i), k)
  }
  t.equal(codeOf(() => onion.addHop(Buffer.alloc(32), keysOf())), 'MM_ERR_CIRCUIT')
  const body = randomBytes(forwardBodyMax(MAX_HOPS))
  let cur = onion.wrapForward(MAX_HOPS, RelayCommand.DATA, body)
  for (let h = 1; h < MAX_HOPS; h++) cur = repad(hops[h - 1].peel(cur).body)
  t.same(hops[MAX_HOPS - 1].peel(cur).body, body)
  t.equal(BACKWARD_BODY + LAYER_OVERHEAD * MAX_HOPS, CELL_DATA, 'backward budget: 8 layers + BACKWARD_BODY = CELL_DATA')
  let back = repad(hops[MAX_HOPS - 1].originate(RelayCommand.DATA, randomBytes(BACKWARD_BODY)))
  for (let h = MAX_HOPS - 1; h >= 1; h--) back = repad(hops[h - 1].wrapBackward(back))
  t.equal(layerLength(back), CELL_DATA, 'the 8-layer backward cell fills CELL_DATA exactly')
  t.equal(onion.unwrapBackward(back).hop, MAX_HOPS)
})

t.test('wipe zeroes every key and empties the circuit (P5)', async t => {
  const onion = new ClientOnion()
  const k = keysOf()
  onion.addHop(Buffer.alloc(32), k)
  onion.wipe()
  t.ok(k.forward.every((b) => b === 0) && k.backward.every((b) => b === 0))
  t.equal(onion.length, 0)
})
