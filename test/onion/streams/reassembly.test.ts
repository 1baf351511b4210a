// Streams (docs/PROTOCOL.md §6): a message is cut into pieces that carry their offset and
// the message's total, END on the last; reassembly takes only the next piece of each
// stream: a gap, a repeat, a reorder, a changed total or END in the wrong place refuses
// the stream (MM_ERR_STREAM_SEQUENCE) and never yields altered bytes. Bounded per message,
// per circuit (open streams, half-received bytes, shared across a hop) and in time.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { DataFlag, decodeData, type DataMsg } from '../../../src/onion/cells/relay-msg.js'
import { ByteBudget, MAX_MESSAGE, MAX_STREAMS, Reassembler, STREAM_TTL_MS, fragment, type Pushed } from '../../../src/onion/streams/reassembly.js'
import { codeOf } from '../helpers.js'

const pieces = (id: number, msg: Buffer, maxBody = 1000): DataMsg[] => fragment(id, msg, maxBody).map((x) => decodeData(x))
const kinds = (rs: Pushed[]) => rs.map((r) => r.kind === 'refused' ? `refused:${r.code}` : r.kind)

t.test('fragment: offsets, one total, END on the last only', async t => {
  const a = randomBytes(5000)
  const fa = pieces(1, a)
  t.equal(fa.length, Math.ceil(5000 / 987), 'each piece carries maxBody − 13 bytes')
  t.same(fa.map((m) => m.offset), fa.map((_m, i) => i * 987))
  t.ok(fa.every((m) => m.total === 5000))
  t.same(fa.map((m) => m.flags), [...fa.slice(1).map(() => 0), DataFlag.END], 'END on the last only')
  t.same(pieces(3, Buffer.alloc(0), 100).map((m) => [m.flags, m.offset, m.total, m.data.length]), [[DataFlag.END, 0, 0, 0]], 'an empty message is one END piece')
  t.equal(codeOf(() => fragment(1, Buffer.alloc(MAX_MESSAGE + 1), 2000)), 'MM_ERR_TOO_LARGE')
  t.equal(codeOf(() => fragment(1, Buffer.alloc(1), 13)), 'MM_ERR_LENGTH', 'no room for data')
})

t.test('interleaved streams reassemble; a one-piece message is never held', async t => {
  const a = randomBytes(5000)
  const b = randomBytes(1)
  const fa = pieces(1, a)
  const r = new Reassembler()
  t.same(r.push(fa[0], 0), { kind: 'partial', streamId: 1 })
  t.same(r.push(pieces(2, b)[0], 0), { kind: 'message', streamId: 2, data: b })
  t.equal(r.bytes, 5000, 'the declared total is reserved')
  let out: Pushed | undefined
  for (const m of fa.slice(1)) out = r.push(m, 1)
  t.same(out, { kind: 'message', streamId: 1, data: a })
  t.same([r.size, r.bytes], [0, 0])
})

t.test('the splicing attack: pieces held back, dropped, repeated or reordered never make a message', async t => {
  // the request: A×1949 B×2009 C×2009 D×100 in pieces of 2009 data bytes
  const msg = Buffer.concat([Buffer.alloc(1949, 'A'), Buffer.alloc(2009, 'B'), Buffer.alloc(2009, 'C'), Buffer.alloc(100, 'D')])
  const ps = pieces(5, msg, 2009 + 13)
  t.equal(ps.length, 4)
  const attempts: Record<string, number[]> = {
    'reordered (2 before 1)': [0, 2, 1, 3],
    'one dropped': [0, 1, 3],
    'one repeated': [0, 1, 1, 2, 3],
    'the last first': [3, 0, 1, 2],
    'the first missing': [1, 2, 3],
  }
  for (const [name, order] of Object.entries(attempts)) {
    // as at the final hop (the client drops a refused stream's later pieces before reassembly)
    const r = new Reassembler({ increasingIds: true })
    const results = order.map((i) => r.push(ps[i], 0))
    t.notOk(results.some((x) => x.kind === 'message'), `${name}: no message`)
    t.ok(results.some((x) => x.kind === 'refused' && x.code === 'MM_ERR_STREAM_SEQUENCE'), `${name}: the stream is refused with MM_ERR_STREAM_SEQUENCE`)
    t.same([r.size, r.bytes], [0, 0], `${name}: nothing held`)
  }
  const r = new Reassembler()
  t.same(kinds(ps.map((p) => r.push(p, 0))), ['partial', 'partial', 'partial', 'message'], 'in order, it arrives whole')
})

t.test('a piece must agree with its stream: total, END at the total, no empty middle piece', async t => {
  const base = { streamId: 1, flags: 0, offset: 0, total: 10, data: Buffer.from('hello') }
  const cases: [string, DataMsg][] = [
    ['total changed', { ...base, offset: 5, total: 11 }],
    ['END before the total', { ...base, offset: 5, flags: DataFlag.END, data: Buffer.from('wo') }],
    ['reaches the total without END', { ...base, offset: 5 }],
    ['beyond the total', { ...base, offset: 5, flags: DataFlag.END, data: Buffer.from('world!') }],
    ['an empty piece in the middle', { ...base, offset: 5, data: Buffer.alloc(0) }],
  ]
  for (const [name, second] of cases) {
    const r = new Reassembler()
    t.equal(r.push(base, 0).kind, 'partial')
    const got = r.push(second, 0)
    t.same([got.kind, (got as { code?: string }).code], ['refused', 'MM_ERR_STREAM_SEQUENCE'], name)
    t.equal(r.size, 0, `${name}: the stream is gone`)
  }
  const r = new Reassembler()
  t.same(kinds([r.push({ ...base, total: 5, flags: 0 }, 0)]), ['refused:MM_ERR_STREAM_SEQUENCE'], 'a first piece reaching its total without END')
  t.same(kinds([r.push({ ...base, streamId: 2, flags: DataFlag.END }, 0)]), ['refused:MM_ERR_STREAM_SEQUENCE'], 'a first piece with END short of its total')
})

t.test('increasing ids (the final hop): a piece of a stream that is over is ignored, never a new stream', async t => {
  const r = new Reassembler({ increasingIds: true })
  const two = pieces(2, Buffer.alloc(2500, 2))
  t.same(kinds([r.push(two[0], 0), r.push(two[1], 0), r.push(two[2], 0), r.push(two[2], 0), r.push(two[0], 0)]), ['partial', 'partial', 'message', 'ignored', 'ignored'], 'a repeat after the end, even of the first piece, is ignored')
  const four = pieces(4, Buffer.alloc(2500, 4))
  t.same(kinds([r.push(four[1], 0), r.push(four[2], 0), r.push(four[0], 0)]), ['refused:MM_ERR_STREAM_SEQUENCE', 'ignored', 'ignored'], 'a stream whose first piece is missing is refused once, then ignored')
  t.same(kinds([r.push(pieces(3, Buffer.from('late'))[0], 0)]), ['ignored'], 'a lower new id is ignored')
  t.same(kinds([r.push(pieces(9, Buffer.from('next'))[0], 0)]), ['message'], 'a higher one is taken')
  const open = new Reassembler()
  t.same(kinds([open.push(two[0], 0), open.push(two[1], 0), open.push(two[2], 0), open.push(two[0], 0)]), ['partial', 'partial', 'message', 'partial'], 'without the rule (the client filters by its pending requests), a first piece starts a stream')
})

t.test('RESET drops a stream; drop() and clear() release its bytes', async t => {
  const r = new Reassembler()
  const ps = pieces(1, Buffer.alloc(3000))
  r.push(ps[0], 0)
  t.same(r.push({ streamId: 1, flags: DataFlag.RESET, offset: 0, total: 0, data: Buffer.alloc(0) }, 0), { kind: 'reset', streamId: 1 })
  t.same([r.size, r.bytes], [0, 0])
  t.same(kinds([r.push(ps[1], 0)]), ['refused:MM_ERR_STREAM_SEQUENCE'], 'a piece after the reset is not the start of a stream')
  r.push(pieces(2, Buffer.alloc(3000))[0], 0)
  r.drop(2)
  r.drop(77)
  t.same([r.size, r.bytes], [0, 0], 'dropped')
  r.push(pieces(3, Buffer.alloc(3000))[0], 0)
  r.clear()
  t.same([r.size, r.bytes], [0, 0], 'cleared')
})

t.test('bounds: message size, open streams, bytes per circuit and per hop', async t => {
  const r = new Reassembler()
  const first = (id: number, total: number): DataMsg => ({ streamId: id, flags: 0, offset: 0, total, data: Buffer.from('x') })
  t.same(kinds([r.push(first(1, MAX_MESSAGE + 1), 0)]), ['refused:MM_ERR_TOO_LARGE'])
  for (let id = 2; id < 2 + MAX_STREAMS; id++) t.equal(r.push(first(id, 10), 0).kind, 'partial')
  t.same(kinds([r.push(first(999, 10), 0)]), ['refused:MM_ERR_STREAMS'])
  t.same(kinds([r.push({ streamId: 1000, flags: DataFlag.END, offset: 0, total: 1, data: Buffer.from('y') }, 0)]), ['message'], 'a one-piece message still passes: it is never held')
  t.same(kinds([r.push({ streamId: 2, flags: 0, offset: 1, total: 10, data: Buffer.from('more') }, 0)]), ['partial'], 'an open stream continues')

  const capped = new Reassembler({ maxBytes: 100 })
  t.same(kinds([capped.push(first(1, 60), 0), capped.push(first(2, 60), 0), capped.push(first(3, 40), 0)]), ['partial', 'refused:MM_ERR_STREAM_BUDGET', 'partial'], 'the circuit cap counts declared totals')
  t.equal(capped.bytes, 100)

  const shared = new ByteBudget(150)
  const c1 = new Reassembler({ shared })
  const c2 = new Reassembler({ shared })
  t.same(kinds([c1.push(first(1, 100), 0), c2.push(first(1, 100), 0), c2.push(first(2, 50), 0)]), ['partial', 'refused:MM_ERR_STREAM_BUDGET', 'partial'], 'the hop-wide budget is shared')
  c1.clear()
  t.equal(shared.used, 50, 'released when a circuit goes')
  t.same(kinds([c2.push(first(3, 100), 0)]), ['partial'])
})

t.test('half-received streams expire', async t => {
  const r = new Reassembler({ ttlMs: 1000 })
  const a = pieces(1, Buffer.alloc(3000))
  const b = pieces(2, Buffer.alloc(3000))
  r.push(a[0], 0)
  r.push(b[0], 600)
  t.same(r.expire(999), [], 'not yet')
  t.same(r.expire(1000), [1], 'the first, 1 s after its first piece')
  t.same(kinds([r.push(a[1], 1000)]), ['refused:MM_ERR_STREAM_SEQUENCE'], 'an expired stream does not continue')
  t.same(r.expire(1600), [2])
  t.same([r.size, r.bytes], [0, 0])
  t.equal(new Reassembler().push(a[0], 0).kind, 'partial')
  t.equal(STREAM_TTL_MS, 30_000, 'the default TTL')
})
