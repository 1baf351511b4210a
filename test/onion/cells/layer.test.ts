// Layers (docs/PROTOCOL.md §3): the stored vectors seal byte for byte and re-open at
// their position, the layout is re-checked with raw AES-256-GCM (nonce = 0^4 ‖ position,
// no counter on the wire), an opener takes only the next position (a gap, a repeat or a
// reorder is refused), and every truncation, extension and single-bit flip of a
// whole-cell layer is refused with a typed code, leaving the position unchanged (P6, P9).
import t from 'tap'
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { LayerOpener, LayerSealer, RelayCommand, layerLength } from '../../../src/onion/cells/layer.js'
import { CELL_DATA, LAYER_HEADER, LAYER_PREFIX, LAYER_TAG, forwardSealedLength } from '../../../src/onion/cells/constants.js'
import { codeOf, flipBit, hex, tally, vectors } from '../helpers.js'

interface V { name: string, key: string, position: number, cmd: number, body: string, sealedLen: number, sealed: string }
const { vectors: vs } = vectors<{ vectors: V[] }>('onion-layer.json')

t.equal(vs.length, 4, 'four layer vectors')

const nonceOf = (position: number): Buffer => {
  const n = Buffer.alloc(12)
  n.writeBigUInt64BE(BigInt(position), 4)
  return n
}

for (const v of vs) {
  t.test(`vector: ${v.name}`, async t => {
    const sealer = new LayerSealer(hex(v.key))
    sealer.position = v.position - 1
    const sealed = sealer.seal(v.cmd, hex(v.body), v.sealedLen)
    t.equal(sealed.toString('hex'), v.sealed, 'seal reproduces the stored bytes')
    t.equal(sealer.position, v.position)
    t.equal(sealed.length, LAYER_PREFIX + v.sealedLen + LAYER_TAG)
    t.equal(layerLength(sealed), sealed.length)

    const opened = new LayerOpener(hex(v.key), v.position - 1).open(Buffer.concat([hex(v.sealed), Buffer.alloc(7, 0xaa)]))
    t.equal(opened.position, v.position)
    t.equal(opened.cmd, v.cmd)
    t.equal(opened.body.toString('hex'), v.body, 'open returns the same body (trailing padding ignored)')
    if (v.position > 1) t.equal(codeOf(() => new LayerOpener(hex(v.key)).open(hex(v.sealed))), 'MM_ERR_LAYER_AUTH', 'an opener at another position cannot open it')

    // independent reading of the layout with raw node:crypto
    const b = hex(v.sealed)
    t.equal(b.readUInt16BE(0), v.sealedLen, 'sealed length u16 BE at 0, and nothing else in the clear')
    const d = createDecipheriv('aes-256-gcm', hex(v.key), nonceOf(v.position))
    d.setAAD(b.subarray(0, LAYER_PREFIX))
    d.setAuthTag(b.subarray(b.length - LAYER_TAG))
    const pt = Buffer.concat([d.update(b.subarray(LAYER_PREFIX, b.length - LAYER_TAG)), d.final()])
    t.equal(pt[0], v.cmd, 'cmd first')
    t.equal(pt.readUInt16BE(1), hex(v.body).length, 'body length u16 BE')
    t.equal(pt.subarray(LAYER_HEADER, LAYER_HEADER + hex(v.body).length).toString('hex'), v.body)
    t.ok(pt.subarray(LAYER_HEADER + hex(v.body).length).every((x) => x === 0), 'zero padding to the sealed length')
  })
}

t.test('seal refuses a body that does not fit the sealed length', async t => {
  const s = new LayerSealer(Buffer.alloc(32, 1))
  t.equal(codeOf(() => s.seal(RelayCommand.DATA, Buffer.alloc(10), 12)), 'MM_ERR_LENGTH')
  t.equal(codeOf(() => s.seal(RelayCommand.DATA, Buffer.alloc(10), 0x10000)), 'MM_ERR_LENGTH')
  t.equal(s.position, 0, 'a refused seal takes no position')
  t.equal(codeOf(() => new LayerSealer(Buffer.alloc(31))), 'MM_ERR_LENGTH', 'key must be 32 bytes')
  t.equal(codeOf(() => new LayerOpener(Buffer.alloc(33))), 'MM_ERR_LENGTH')
  t.equal(codeOf(() => { s.position = -1 }), 'MM_ERR_INTERNAL', 'a position is a count')
  t.equal(codeOf(() => { s.position = 1.5 }), 'MM_ERR_INTERNAL')
})

t.test('layerLength refuses anything shorter than prefix + tag', async t => {
  const bad: string[] = []
  for (let n = 0; n < LAYER_PREFIX + LAYER_TAG; n++) {
    const c = codeOf(() => layerLength(Buffer.alloc(n)))
    if (c !== 'MM_ERR_LENGTH') bad.push(`${n}:${c}`)
  }
  t.same(bad, [])
  t.equal(layerLength(Buffer.from('0005' + '00'.repeat(21), 'hex')), LAYER_PREFIX + 5 + LAYER_TAG)
})

t.test('an opener takes exactly the next position: gaps, repeats and reorders are refused', async t => {
  const k = Buffer.alloc(32, 7)
  const s = new LayerSealer(Buffer.from(k))
  const cells = [1, 2, 3, 4, 5].map((i) => s.seal(RelayCommand.DATA, Buffer.from(`cell ${i}`), 40))
  t.same(cells.map((c) => c.subarray(0, LAYER_PREFIX).toString('hex')), cells.map(() => '0028'), 'every layer carries the same clear prefix: no position on the wire')
  const o = new LayerOpener(Buffer.from(k))
  t.equal(codeOf(() => o.open(cells[1])), 'MM_ERR_LAYER_AUTH', 'cell 2 before cell 1 (reorder or gap)')
  t.equal(o.position, 0, 'position unchanged')
  t.equal(o.open(cells[0]).body.toString(), 'cell 1')
  t.equal(codeOf(() => o.open(cells[0])), 'MM_ERR_LAYER_AUTH', 'cell 1 again (repeat)')
  t.equal(o.open(cells[1]).body.toString(), 'cell 2')
  t.equal(codeOf(() => o.open(cells[3])), 'MM_ERR_LAYER_AUTH', 'cell 4 with cell 3 missing (gap)')
  t.equal(o.position, 2)
  t.same([o.open(cells[2]).position, o.open(cells[3]).position, o.open(cells[4]).position], [3, 4, 5], 'in order, every cell opens')
  const resumed = new LayerOpener(Buffer.from(k), 4)
  t.equal(resumed.open(cells[4]).body.toString(), 'cell 5', 'an opener restored at position 4 takes cell 5')
})

// a whole-cell layer: what hop 1 receives on a forward cell
const key = Buffer.alloc(32, 0x42)
const cellLayer = (position = 1) => {
  const s = new LayerSealer(Buffer.from(key))
  s.position = position - 1
  return s.seal(RelayCommand.DATA, Buffer.from('the body of a whole cell'), forwardSealedLength(1))
}

t.test('the whole-cell layer fills CELL_DATA exactly', async t => {
  t.equal(cellLayer().length, CELL_DATA)
})

t.test('every truncation of a whole-cell layer: MM_ERR_LENGTH, state unchanged', async t => {
  const good = cellLayer()
  const o = new LayerOpener(Buffer.from(key))
  const out: string[] = []
  for (let n = 0; n < good.length; n++) out.push(codeOf(() => o.open(good.subarray(0, n))))
  t.same(tally(out), { MM_ERR_LENGTH: good.length })
  t.equal(o.position, 0, 'position untouched')
  t.equal(o.open(good).cmd, RelayCommand.DATA, 'the good cell still opens')
})

t.test('every single-bit flip of a whole-cell layer is refused, none opens, state unchanged', async t => {
  const good = cellLayer(3)
  const len = good.readUInt16BE(0)
  t.equal(len, forwardSealedLength(1))
  const ones = len.toString(2).split('').filter((b) => b === '1').length
  const o = new LayerOpener(Buffer.from(key), 2)
  const out: string[] = []
  for (let bit = 0; bit < good.length * 8; bit++) out.push(codeOf(() => o.open(flipBit(good, bit))))
  t.same(tally(out), {
    // a length bit that shrinks the layer, and the whole sealed region + tag
    MM_ERR_LAYER_AUTH: ones + (good.length - LAYER_PREFIX) * 8,
    // a length bit that grows the layer past the cell
    MM_ERR_LENGTH: 16 - ones,
  }, 'no flipped cell opens; each refused with the expected code')
  t.equal(o.position, 2, 'position unchanged at the end')
  t.equal(o.open(good).position, 3, 'the good cell still opens after all rejections')
  t.equal(codeOf(() => o.open(good)), 'MM_ERR_LAYER_AUTH', 'and only once')
})

t.test('an authentic layer with a bad inner format: MM_ERR_LAYER_FORMAT, no position taken', async t => {
  const k = Buffer.alloc(32, 9)
  const o = new LayerOpener(Buffer.from(k))
  // hand-made plaintexts sealed with raw GCM under the right key at position 1
  const raw = (pt: Buffer) => {
    const prefix = Buffer.alloc(LAYER_PREFIX)
    prefix.writeUInt16BE(pt.length, 0)
    const c = createCipheriv('aes-256-gcm', k, nonceOf(1))
    c.setAAD(prefix)
    return Buffer.concat([prefix, c.update(pt), c.final(), c.getAuthTag()])
  }
  t.equal(codeOf(() => o.open(raw(Buffer.from([RelayCommand.DATA, 0])))), 'MM_ERR_LAYER_FORMAT', 'shorter than its header')
  t.equal(codeOf(() => o.open(raw(Buffer.from([0, 0, 0])))), 'MM_ERR_LAYER_FORMAT', 'relay command 0')
  t.equal(codeOf(() => o.open(raw(Buffer.from([7, 0, 0])))), 'MM_ERR_LAYER_FORMAT', 'relay command 7')
  t.equal(codeOf(() => o.open(raw(Buffer.from([RelayCommand.DATA, 0, 2, 0xff])))), 'MM_ERR_LAYER_FORMAT', 'body length beyond the layer')
  t.equal(o.position, 0, 'none of them took position 1')
  t.equal(o.open(raw(Buffer.from([RelayCommand.DROP, 0, 1, 0xff]))).body.toString('hex'), 'ff')
})

t.test('layers sealed one after another stay independent (shared staging is not leaked into outputs)', async t => {
  const k1 = Buffer.alloc(32, 1)
  const k2 = Buffer.alloc(32, 2)
  const s1 = new LayerSealer(Buffer.from(k1))
  const s2 = new LayerSealer(Buffer.from(k2))
  const inner = s2.seal(RelayCommand.DATA, Buffer.from('innermost body'), 100)
  const innerCopy = Buffer.from(inner)
  const outer = s1.seal(RelayCommand.FORWARD, inner, 200)
  const other = s1.seal(RelayCommand.DROP, Buffer.alloc(150, 0xee), 200)
  t.same(inner, innerCopy, 'sealing the next layer does not touch the previous output')
  const o1 = new LayerOpener(Buffer.from(k1))
  const peeled = o1.open(outer)
  t.equal(peeled.cmd, RelayCommand.FORWARD)
  t.same(peeled.body, innerCopy, 'the outer layer carries the inner one byte for byte')
  t.same(new LayerOpener(Buffer.from(k2)).open(peeled.body).body, Buffer.from('innermost body'))
  t.same(o1.open(other).body, Buffer.alloc(150, 0xee))
})
