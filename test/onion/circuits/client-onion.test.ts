// ClientOnion ↔ HopState over a 4-hop circuit in memory (client, 3 relays, the final
// hop) built with real CREATE/EXTEND handshakes (docs/PROTOCOL.md §3–§5): each hop peels
// exactly its layer, every cell on every link is CELL_DATA long (P3), backward cells say
// which hop made them, a flipped bit, a repeat, a gap or a reorder is refused at the hop
// (or client) it reaches (P6), the circuit vector reproduces byte for byte, and two hops
// that are not neighbours see nothing in common for the same cell (no counter to match).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { BACKWARD_BODY, CELL_DATA, LAYER_OVERHEAD, LAYER_PREFIX, LAYER_TAG, MAX_HOPS, forwardBodyMax, forwardSealedLength } from '../../../src/onion/cells/constants.js'
import { RelayCommand, layerLength } from '../../../src/onion/cells/layer.js'
import { ClientOnion } from '../../../src/onion/circuits/client-onion.js'
import { HopState } from '../../../src/onion/circuits/hop-state.js'
import { buildChain, identities, repad } from './chain.js'
import { codeOf, flipBit, hex, tally, vectors } from '../helpers.js'

const ids = identities(4)
const keysOf = () => ({ forward: randomBytes(32), backward: randomBytes(32) })
const cells = (n: number, v: number): number[] => Array.from({ length: n }, () => v)

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
    t.same(seen.map((s) => s.len), seen.map((s) => forwardSealedLength(s.hop) + LAYER_PREFIX + LAYER_TAG), 'each layer is one overhead shorter')
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

t.test('only the next cell opens, at every hop and at the client: repeats, gaps and reorders are refused', async t => {
  const c = buildChain(ids)
  const a = c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('a'))
  const b = c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('b'))
  t.equal(codeOf(() => c.forward(b)), 'MM_ERR_LAYER_AUTH', 'b before a (a reorder, or a gap) is refused at hop 1')
  t.same(c.forward(a).body.toString(), 'a', 'a, the next cell, goes through')
  t.equal(codeOf(() => c.forward(a)), 'MM_ERR_LAYER_AUTH', 'a again (a repeat) is refused at hop 1')
  t.same(c.forward(b).body.toString(), 'b', 'b in its place')
  // a relay that holds a cell back: hop 1 peeled d, then e; e reaches hop 2 first
  const d = repad(c.hops[0].peel(c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('d'))).body)
  const e = repad(c.hops[0].peel(c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('e'))).body)
  t.equal(codeOf(() => c.forward(e, 2)), 'MM_ERR_LAYER_AUTH', 'reordered at hop 2')
  t.same(c.forward(d, 2).body.toString(), 'd')
  t.equal(codeOf(() => c.forward(d, 2)), 'MM_ERR_LAYER_AUTH', 'repeated at hop 2')
  // a relay that drops a cell: hop 3 never sees f, so g does not open there
  c.forward(repad(c.hops[1].peel(e).body), 3) // e reaches hop 3 in order
  const f = repad(c.hops[1].peel(repad(c.hops[0].peel(c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('f'))).body)).body)
  const g = repad(c.hops[1].peel(repad(c.hops[0].peel(c.onion.wrapForward(3, RelayCommand.DATA, Buffer.from('g'))).body)).body)
  t.equal(codeOf(() => c.forward(g, 3)), 'MM_ERR_LAYER_AUTH', 'f dropped: g refused at hop 3')
  t.same(c.forward(f, 3).body.toString(), 'f')
  // backward at the client: a repeat, a gap, a reorder, a flipped bit
  const r1 = c.backward(4, RelayCommand.DATA, Buffer.from('r1'))
  const r2 = c.backward(4, RelayCommand.DATA, Buffer.from('r2'))
  t.equal(codeOf(() => c.onion.unwrapBackward(r2)), 'MM_ERR_LAYER_AUTH', 'backward reorder (or gap) refused by the client')
  t.same(c.onion.unwrapBackward(r1).body.toString(), 'r1')
  t.equal(codeOf(() => c.onion.unwrapBackward(r1)), 'MM_ERR_LAYER_AUTH', 'backward repeat refused by the client')
  t.same(c.onion.unwrapBackward(r2).body.toString(), 'r2')
  const flipped = flipBit(c.backward(4, RelayCommand.DATA, Buffer.from('s')), 8 * 40)
  t.equal(codeOf(() => c.onion.unwrapBackward(flipped)), 'MM_ERR_LAYER_AUTH', 'backward tamper refused by the client')
})

t.test('vector: a 3-hop circuit, cells in order, every layer at its hop\'s position (onion-circuit.json)', async t => {
  interface F { target: number, cmd: number, body: string, received: string[] }
  interface B { from: number, cmd: number, body: string, sent: string[] }
  const v = vectors<{ hops: Array<{ forward: string, backward: string }>, forward: F[], backward: B[] }>('onion-circuit.json')
  const onion = new ClientOnion()
  v.hops.forEach((k, i) => onion.addHop(Buffer.alloc(32, i), { forward: hex(k.forward), backward: hex(k.backward) }))
  const hops = v.hops.map((k) => new HopState({ forward: hex(k.forward), backward: hex(k.backward) }))
  for (const [i, f] of v.forward.entries()) {
    let cur = onion.wrapForward(f.target, f.cmd, hex(f.body))
    const got: string[] = []
    for (let h = 1; h <= f.target; h++) {
      got.push(cur.subarray(0, layerLength(cur)).toString('hex'))
      const o = hops[h - 1].peel(repad(cur))
      if (h === f.target) t.same([o.cmd, o.body.toString('hex')], [f.cmd, f.body], `forward ${i}: kept by hop ${h}`)
      cur = o.body
    }
    t.same(got, f.received, `forward ${i}: the layer each hop receives, byte for byte`)
  }
  for (const [i, b] of v.backward.entries()) {
    const sent: string[] = []
    let cur = hops[b.from - 1].originate(b.cmd, hex(b.body))
    sent.unshift(cur.toString('hex'))
    for (let h = b.from - 1; h >= 1; h--) { cur = hops[h - 1].wrapBackward(repad(cur)); sent.unshift(cur.toString('hex')) }
    t.same(sent, b.sent, `backward ${i}: the layer each hop sends, byte for byte`)
    const u = onion.unwrapBackward(repad(hex(b.sent[0])))
    t.same([u.hop, u.cmd, u.body.toString('hex')], [b.from, b.cmd, b.body], `backward ${i}: the client opens it`)
  }
})

t.test('two hops that are not neighbours share nothing that identifies a cell (no counter, no fixed offset)', async t => {
  const c = buildChain(ids)
  const N = 5
  // each hop's view of each cell: forward, what it receives and what it peels; backward, what it receives and sends
  const fwd: Buffer[][] = [[], [], [], []]
  const back: Buffer[][] = [[], [], [], []]
  const received: Buffer[][] = [[], [], [], []]
  for (let i = 0; i < N; i++) {
    let cur = c.onion.wrapForward(4, RelayCommand.DATA, Buffer.from(`request ${i}`))
    for (let h = 1; h <= 4; h++) {
      const o = c.hops[h - 1].peel(cur)
      fwd[h - 1].push(Buffer.concat([cur, o.body]))
      received[h - 1].push(cur)
      cur = repad(o.body)
    }
  }
  for (let i = 0; i < N; i++) {
    let cur = repad(c.hops[3].originate(RelayCommand.DATA, Buffer.from(`response ${i}`)))
    back[3].push(cur)
    for (let h = 3; h >= 1; h--) {
      const out = repad(c.hops[h - 1].wrapBackward(cur))
      back[h - 1].push(Buffer.concat([cur, out]))
      cur = out
    }
    c.onion.unwrapBackward(cur)
  }
  const windows = (b: Buffer, w: number): Set<string> => {
    const s = new Set<string>()
    for (let o = 0; o + w <= b.length; o++) s.add(b.toString('latin1', o, o + w))
    return s
  }
  const shared = (a: Buffer, b: Buffer): number => {
    const wa = windows(a, 8)
    let n = 0
    for (const x of windows(b, 8)) if (wa.has(x)) n++
    return n
  }
  const pairs = [[1, 3], [1, 4], [2, 4]]
  for (const [h, g] of pairs) {
    for (const [dir, views] of [['forward', fwd], ['backward', back]] as const) {
      const common = views[h - 1].map((v, i) => shared(v, views[g - 1][i]))
      t.same(common, common.map(() => 0), `${dir}: hops ${h} and ${g} see no 8 bytes in common for the same cell`)
    }
    // the old header's flaw: hop k's counter was a fixed offset from hop k+2's for the same cell
    let lockstep = 0
    for (let o = 0; o < 16; o++) {
      for (let p = 0; p < 16; p++) {
        const diffs = new Set(received[h - 1].map((cell, i) => BigInt.asUintN(64, cell.readBigUInt64BE(o) - received[g - 1][i].readBigUInt64BE(p))))
        if (diffs.size === 1) lockstep++
      }
    }
    t.equal(lockstep, 0, `hops ${h} and ${g}: no 8-byte field in the first 16 bytes of their cells moves in step across ${N} cells`)
  }
  t.same(received.map((list) => list.map((x) => x.readUInt16BE(0))), [1, 2, 3, 4].map((h) => cells(N, forwardSealedLength(h))), 'the only clear field is the sealed length, the same for every cell at a hop')
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
