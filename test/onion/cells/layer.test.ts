// Layers (docs/PROTOCOL.md §3): the stored vectors seal byte for byte and re-open,
// the layout is re-checked with raw AES-256-GCM, and every truncation, extension and
// single-bit flip of a whole-cell layer is refused with a typed code, leaving the
// opener's state unchanged so the good cell still opens afterwards (P6, P9).
import t from 'tap'
import { createDecipheriv } from 'node:crypto'
import { LayerOpener, LayerSealer, RelayCommand, layerLength } from '../../../src/onion/cells/layer.js'
import { CELL_DATA, LAYER_HEADER, LAYER_PREFIX, LAYER_TAG, forwardSealedLength } from '../../../src/onion/cells/constants.js'
import { codeOf, flipBit, hex, tally, vectors } from '../helpers.js'

interface V { name: string, key: string, counter: string, cmd: number, body: string, sealedLen: number, sealed: string }
const { vectors: vs } = vectors<{ vectors: V[] }>('onion-layer.json')

t.equal(vs.length, 4, 'four layer vectors')

for (const v of vs) {
  t.test(`vector: ${v.name}`, async t => {
    const sealer = new LayerSealer(hex(v.key))
    sealer.counter = BigInt(v.counter) - 1n
    const sealed = sealer.seal(v.cmd, hex(v.body), v.sealedLen)
    t.equal(sealed.toString('hex'), v.sealed, 'seal reproduces the stored bytes')
    t.equal(sealer.counter, BigInt(v.counter))
    t.equal(sealed.length, LAYER_PREFIX + v.sealedLen + LAYER_TAG)
    t.equal(layerLength(sealed), sealed.length)

    const opened = new LayerOpener(hex(v.key)).open(Buffer.concat([hex(v.sealed), Buffer.alloc(7, 0xaa)]))
    t.equal(opened.ctr, BigInt(v.counter))
    t.equal(opened.cmd, v.cmd)
    t.equal(opened.body.toString('hex'), v.body, 'open returns the same body (trailing padding ignored)')

    // independent reading of the layout with raw node:crypto
    const b = hex(v.sealed)
    t.equal(b.readBigUInt64BE(0).toString(), v.counter, 'ctr u64 BE at 0')
    t.equal(b.readUInt16BE(8), v.sealedLen, 'sealed length u16 BE at 8')
    const nonce = Buffer.concat([Buffer.alloc(4), b.subarray(0, 8)])
    const d = createDecipheriv('aes-256-gcm', hex(v.key), nonce)
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
  t.equal(s.counter, 0n, 'a refused seal consumes no counter')
  t.equal(codeOf(() => new LayerSealer(Buffer.alloc(31))), 'MM_ERR_LENGTH', 'key must be 32 bytes')
  t.equal(codeOf(() => new LayerOpener(Buffer.alloc(33))), 'MM_ERR_LENGTH')
})

t.test('layerLength refuses anything shorter than prefix + tag', async t => {
  const bad: string[] = []
  for (let n = 0; n < LAYER_PREFIX + LAYER_TAG; n++) {
    const c = codeOf(() => layerLength(Buffer.alloc(n)))
    if (c !== 'MM_ERR_LENGTH') bad.push(`${n}:${c}`)
  }
  t.same(bad, [])
  t.equal(layerLength(Buffer.from('00000000000000010005' + '00'.repeat(21), 'hex')), LAYER_PREFIX + 5 + LAYER_TAG)
})

// a whole-cell layer: what hop 1 receives on a forward cell
const key = Buffer.alloc(32, 0x42)
const cellLayer = (ctr = 1n) => {
  const s = new LayerSealer(Buffer.from(key))
  s.counter = ctr - 1n
  return s.seal(RelayCommand.DATA, Buffer.from('the body of a whole cell'), forwardSealedLength(1))
}

t.test('the whole-cell layer fills CELL_DATA exactly', async t => {
  t.equal(cellLayer().length, CELL_DATA)
})

t.test('every truncation of a whole-cell layer: MM_ERR_LENGTH, state unchanged', async t => {
  const good = cellLayer()
  const o = new LayerOpener(Buffer.from(key))
  const before = o.window.serialize()
  const out: string[] = []
  for (let n = 0; n < good.length; n++) out.push(codeOf(() => o.open(good.subarray(0, n))))
  t.same(tally(out), { MM_ERR_LENGTH: good.length })
  t.same(o.window.serialize(), before, 'window untouched')
  t.equal(o.open(good).cmd, RelayCommand.DATA, 'the good cell still opens')
})

t.test('every single-bit flip of a whole-cell layer is refused, none opens, state unchanged', async t => {
  const good = cellLayer(5n)
  t.equal(good.readUInt16BE(8), 0x07e1, 'sealed length 2017: 7 one-bits, 9 zero-bits')
  const o = new LayerOpener(Buffer.from(key))
  o.open(cellLayer(1n))
  o.open(cellLayer(4n)) // seen {1, 4}: flipping ctr 5 to 4 (bit 56) or to 1 (bit 58) is a replay
  const before = o.window.serialize()
  const out: string[] = []
  let changed = 0
  for (let bit = 0; bit < good.length * 8; bit++) {
    out.push(codeOf(() => o.open(flipBit(good, bit))))
    if (bit % 61 === 0 && !o.window.serialize().equals(before)) changed++
  }
  t.same(out.slice(56, 59), ['MM_ERR_REPLAY', 'MM_ERR_LAYER_AUTH', 'MM_ERR_REPLAY'], 'ctr 5→4 and 5→1 are replays')
  t.same(tally(out), {
    // every other counter bit, every length bit that shrinks the layer, and the whole sealed region + tag
    MM_ERR_LAYER_AUTH: 62 + 7 + (good.length - LAYER_PREFIX) * 8,
    MM_ERR_REPLAY: 2,
    // a length bit that grows the layer past the cell
    MM_ERR_LENGTH: 9,
  }, 'no flipped cell opens; each refused with the expected code')
  t.equal(changed, 0, 'window never changed during the loop')
  t.same(o.window.serialize(), before, 'window unchanged at the end')
  t.equal(o.open(good).ctr, 5n, 'the good cell still opens after all rejections')
  t.equal(codeOf(() => o.open(good)), 'MM_ERR_REPLAY', 'and only once')
})

t.test('an authentic layer with a bad inner format: MM_ERR_LAYER_FORMAT, no counter consumed', async t => {
  const k = Buffer.alloc(32, 9)
  const o = new LayerOpener(Buffer.from(k))
  // hand-made plaintexts sealed with raw GCM under the right key
  const { createCipheriv } = await import('node:crypto')
  const raw = (ctr: bigint, pt: Buffer) => {
    const prefix = Buffer.alloc(LAYER_PREFIX)
    prefix.writeBigUInt64BE(ctr, 0)
    prefix.writeUInt16BE(pt.length, 8)
    const c = createCipheriv('aes-256-gcm', k, Buffer.concat([Buffer.alloc(4), prefix.subarray(0, 8)]))
    c.setAAD(prefix)
    return Buffer.concat([prefix, c.update(pt), c.final(), c.getAuthTag()])
  }
  t.equal(codeOf(() => o.open(raw(1n, Buffer.from([RelayCommand.DATA, 0])))), 'MM_ERR_LAYER_FORMAT', 'shorter than its header')
  t.equal(codeOf(() => o.open(raw(1n, Buffer.from([0, 0, 0])))), 'MM_ERR_LAYER_FORMAT', 'relay command 0')
  t.equal(codeOf(() => o.open(raw(1n, Buffer.from([7, 0, 0])))), 'MM_ERR_LAYER_FORMAT', 'relay command 7')
  t.equal(codeOf(() => o.open(raw(1n, Buffer.from([RelayCommand.DATA, 0, 2, 0xff])))), 'MM_ERR_LAYER_FORMAT', 'body length beyond the layer')
  t.equal(o.window.top, 0n, 'none of them consumed counter 1')
  t.equal(o.open(raw(1n, Buffer.from([RelayCommand.DROP, 0, 1, 0xff]))).body.toString('hex'), 'ff')
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
