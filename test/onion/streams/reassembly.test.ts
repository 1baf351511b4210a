// Stream fragmentation and reassembly (docs/PROTOCOL.md §6): fragments carry at most
// maxBody - 5 bytes and only the last has END; reassembly is bounded per message and per
// circuit; RESET drops a stream.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { DataFlag, decodeData } from '../../../src/onion/cells/relay-msg.js'
import { MAX_MESSAGE, MAX_STREAMS, Reassembler, fragment } from '../../../src/onion/streams/reassembly.js'
import { codeOf } from '../helpers.js'

t.test('fragment and reassemble, interleaved streams', async t => {
  const a = randomBytes(5000)
  const b = randomBytes(1)
  const fa = fragment(1, a, 1000).map((x) => decodeData(x))
  const fb = fragment(2, b, 1000).map((x) => decodeData(x))
  t.equal(fa.length, Math.ceil(5000 / 995))
  t.ok(fa.every((m) => m.data.length <= 995))
  t.same(fa.map((m) => m.flags), [...fa.slice(1).map(() => 0), DataFlag.END], 'END on the last only')
  const r = new Reassembler()
  t.equal(r.push(fa[0]), undefined)
  t.same(r.push(fb[0]), b, 'a one-cell message completes at once')
  let out
  for (const m of fa.slice(1)) out = r.push(m)
  t.same(out, a)
  t.equal(r.size, 0)
  t.same(fragment(3, Buffer.alloc(0), 100).map((x) => decodeData(x).flags), [DataFlag.END], 'an empty message is one END cell')
})

t.test('bounds: message size, open streams; RESET', async t => {
  t.equal(codeOf(() => fragment(1, Buffer.alloc(MAX_MESSAGE + 1), 2000)), 'MM_ERR_TOO_LARGE')
  const r = new Reassembler()
  for (let id = 1; id <= MAX_STREAMS; id++) r.push({ streamId: id, flags: 0, data: Buffer.from('x') })
  t.equal(codeOf(() => r.push({ streamId: 999, flags: 0, data: Buffer.from('x') })), 'MM_ERR_STREAMS')
  t.equal(codeOf(() => r.push({ streamId: 1, flags: 0, data: Buffer.from('more') })), 'NO_THROW', 'an open stream continues')
  r.push({ streamId: 1, flags: DataFlag.RESET, data: Buffer.alloc(0) })
  t.equal(r.size, MAX_STREAMS - 1, 'RESET drops the stream')
  t.equal(codeOf(() => r.push({ streamId: 999, flags: 0, data: Buffer.from('x') })), 'NO_THROW', 'room again')
  const big = new Reassembler()
  big.push({ streamId: 5, flags: 0, data: Buffer.alloc(MAX_MESSAGE) })
  t.equal(codeOf(() => big.push({ streamId: 5, flags: 0, data: Buffer.alloc(1) })), 'MM_ERR_TOO_LARGE')
  t.equal(big.size, 0, 'the oversized stream is dropped')
  r.clear()
  t.equal(r.size, 0)
})
