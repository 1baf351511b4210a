// FinalHop (docs/PROTOCOL.md §4, §6) with an in-memory Map as its circuit table, a fake
// `send` and a hand-moved time: CREATE → CREATED, a request split over several cells
// reaches the handler once and its response comes back as DATA cells a ClientOnion opens;
// malformed envelopes get a 400, too many streams, pieces out of sequence, the byte caps
// and expiry an error response with their code; a cell that does not open at its position
// (altered, repeated, reordered) ends the circuit with DESTROY INTEGRITY; DESTROY wipes
// the circuit (P5, P6, P9).
import t from 'tap'
import { CELL_SIZE, forwardBodyMax } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { HopError, decodeData, encodeData, type DataMsg } from '../../../src/onion/cells/relay-msg.js'
import { ClientOnion } from '../../../src/onion/circuits/client-onion.js'
import { FinalHop, type FinalCircuit, type FinalHopEvent } from '../../../src/onion/circuits/final-hop.js'
import { clientFinish, clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { decodeResponse, encodeRequest, type ApiRequest, type ApiResponse } from '../../../src/onion/streams/envelope.js'
import { MAX_STREAMS, Reassembler, fragment } from '../../../src/onion/streams/reassembly.js'
import { fixedIdentity, flipBit } from '../helpers.js'

const tick = () => new Promise((resolve) => setImmediate(resolve))

function setup (opts: { maxCircuits?: number, handler?: (r: ApiRequest) => Promise<ApiResponse>, maxCircuitBytes?: number, maxBufferedBytes?: number, streamTtlMs?: number } = {}) {
  const time = { now: 0 }
  const sent: Array<{ channel: string, cell: ChannelCell, raw: Buffer }> = []
  const events: FinalHopEvent[] = []
  const calls: ApiRequest[] = []
  const circuits = new Map<string, FinalCircuit>()
  const hop = new FinalHop({
    identityPrivate: fixedIdentity.privateDer,
    fingerprint: fixedIdentity.fingerprint,
    handler: opts.handler ?? (async (req) => { calls.push(req); return { status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.concat([Buffer.from(`${req.method} ${req.path} `), req.body]) } }),
    send: (channel, raw) => sent.push({ channel, cell: decodeChannelCell(raw), raw }),
    circuits,
    maxCircuits: opts.maxCircuits ?? 10,
    now: () => time.now,
    maxCircuitBytes: opts.maxCircuitBytes,
    maxBufferedBytes: opts.maxBufferedBytes,
    streamTtlMs: opts.streamTtlMs,
    onEvent: (e) => events.push(e),
  })
  /** delivers a raw cell as the channel would */
  const deliver = (channel: string, raw: Buffer) => hop.onCell(channel, decodeChannelCell(raw))
  /** a client circuit through CREATE; returns the onion and helpers */
  const connect = (channel = 'L1', circId = 7) => {
    const { state, create } = clientStart({ identityKey: fixedIdentity.publicDer })
    const n = sent.length
    deliver(channel, encodeChannelCell(circId, ChannelCommand.CREATE, create))
    const reply = sent[n]
    if (!reply || reply.cell.cmd !== ChannelCommand.CREATED) throw new Error('no CREATED')
    const onion = new ClientOnion()
    onion.addHop(fixedIdentity.fingerprint, clientFinish(state, reply.cell.data))
    const relay = (cmd: RelayCommand, body: Buffer) => encodeChannelCell(circId, ChannelCommand.RELAY, onion.wrapForward(1, cmd, body))
    const request = (streamId: number, bytes: Buffer) => fragment(streamId, bytes, forwardBodyMax(1)).map((b) => relay(RelayCommand.DATA, b))
    /** one DATA piece as given (a client that cuts its streams wrongly) */
    const piece = (m: DataMsg) => relay(RelayCommand.DATA, encodeData(m))
    // the client opens each backward cell once, in order (its positions, §3): what it got is kept
    const r = new Reassembler()
    const done: Array<{ at: number, streamId: number, res: ApiResponse }> = []
    let opened = 0
    /** every response that completed on this circuit with a cell sent at index `from` or later */
    const responses = (from: number) => {
      for (; opened < sent.length; opened++) {
        const s = sent[opened]
        if (s.channel !== channel || s.cell.circId !== circId || s.cell.cmd !== ChannelCommand.RELAY) continue
        const u = onion.unwrapBackward(s.cell.data)
        if (u.hop !== 1 || u.cmd !== RelayCommand.DATA) throw new Error('unexpected backward cell')
        const got = r.push(decodeData(u.body), 0)
        if (got.kind === 'message') done.push({ at: opened, streamId: got.streamId, res: decodeResponse(got.data) })
        else if (got.kind !== 'partial') throw new Error(`response stream ${got.streamId}: ${got.kind}`)
      }
      return new Map(done.filter((d) => d.at >= from).map((d) => [d.streamId, d.res]))
    }
    return { onion, relay, request, piece, responses }
  }
  const codes = () => events.filter((e) => e.type === 'rejected').map((e) => (e as { code: string }).code)
  return { hop, sent, events, calls, circuits, deliver, connect, codes, time }
}

const errorCode = (r: ApiResponse | undefined) => JSON.parse(r?.body.toString() ?? '{}').error?.code

t.test('CREATE → CREATED, and a request over several cells reaches the handler once', async t => {
  const f = setup()
  const c = f.connect()
  t.equal(f.circuits.size, 1)
  t.same(f.events[0], { type: 'created', channel: 'L1' })
  const body = Buffer.alloc(9000, 'q')
  const cells = c.request(5, encodeRequest({ method: 'POST', path: '/v1/echo', headers: { 'x-a': 'b' }, body }))
  t.ok(cells.length >= 5, `split over ${cells.length} cells`)
  const from = f.sent.length
  for (const cell of cells.slice(0, -1)) f.deliver('L1', cell)
  await tick()
  t.equal(f.calls.length, 0, 'no call before the END cell')
  f.deliver('L1', cells[cells.length - 1])
  await tick()
  t.equal(f.calls.length, 1, 'handler called once')
  t.same(f.calls[0].headers, { 'x-a': 'b' })
  t.same(f.calls[0].body, body)
  const res = c.responses(from).get(5)
  t.equal(res?.status, 200)
  t.same(res?.body, Buffer.concat([Buffer.from('POST /v1/echo '), body]), 'the response (several backward cells) reassembles')
  t.ok(f.sent.slice(from).length > 1, 'response took several cells')
  t.ok(f.sent.every((s) => s.raw.length === CELL_SIZE), 'every cell sent is CELL_SIZE (P3)')
})

t.test('malformed envelope → 400 with a code; the circuit keeps working', async t => {
  const f = setup()
  const c = f.connect()
  const from = f.sent.length
  const bads = [Buffer.from([2, 3]), Buffer.from([1]), Buffer.from('0103474554000100', 'hex'), Buffer.from('0103474554000b2f762f000003', 'hex')]
  bads.forEach((bad, i) => { for (const cell of c.request(9 + i, bad)) f.deliver('L1', cell) })
  await tick()
  t.equal(f.calls.length, 0, 'handler never called')
  const rs = c.responses(from)
  t.same(bads.map((_b, i) => rs.get(9 + i)?.status), [400, 400, 400, 400])
  t.ok(bads.every((_b, i) => ['MM_ERR_ENVELOPE', 'MM_ERR_LENGTH'].includes(errorCode(rs.get(9 + i)))), 'each with its code')
  const from2 = f.sent.length
  for (const cell of c.request(20, encodeRequest({ method: 'GET', path: '/ok', headers: {}, body: Buffer.alloc(0) }))) f.deliver('L1', cell)
  await tick()
  t.equal(c.responses(from2).get(20)?.status, 200)
})

t.test('each malformed envelope variant gets its own 400', async t => {
  const f = setup()
  const c = f.connect()
  const bad = [Buffer.alloc(0), Buffer.from([2, 3]), Buffer.from('01035055540000', 'hex'), Buffer.from('0103474554000100', 'hex'), Buffer.from('0103474554000161000000', 'hex'), Buffer.from('010347455400012f00025b5d', 'hex')]
  const from = f.sent.length
  bad.forEach((b, i) => { for (const cell of c.request(100 + i, b)) f.deliver('L1', cell) })
  await tick()
  const rs = c.responses(from)
  t.same(bad.map((_, i) => rs.get(100 + i)?.status), bad.map(() => 400))
  t.equal(f.calls.length, 0)
})

t.test('too many open streams on one circuit: an error response, others unaffected', async t => {
  const f = setup()
  const c = f.connect()
  const open = (id: number) => f.deliver('L1', c.piece({ streamId: id, flags: 0, offset: 0, total: 10, data: Buffer.from('part') }))
  for (let id = 1; id <= MAX_STREAMS; id++) open(id)
  const from = f.sent.length
  open(MAX_STREAMS + 1)
  const r = c.responses(from).get(MAX_STREAMS + 1)
  t.ok(r && r.status >= 400 && r.status < 500, `4xx (${r?.status})`)
  t.equal(errorCode(r), 'MM_ERR_STREAMS')
  t.equal(f.circuits.get('L1/7')?.streams.size, MAX_STREAMS)
})

const getReq = (path: string) => encodeRequest({ method: 'GET', path, headers: {}, body: Buffer.alloc(0) })

t.test('a cell that does not open at its position ends the circuit: DESTROY INTEGRITY, nothing handled', async t => {
  const f = setup()
  const cases: Array<[string, string, (c: ReturnType<typeof f.connect>) => Buffer[]]> = [
    ['a flipped bit', 'MM_ERR_LAYER_AUTH', (c) => [flipBit(c.request(1, getReq('/a'))[0], 8 * 1000)]],
    ['a flipped length bit that shrinks the layer', 'MM_ERR_LAYER_AUTH', (c) => [flipBit(c.request(1, getReq('/a'))[0], 5 * 8 + 8)]],
    ['a flipped length bit that grows it past the cell', 'MM_ERR_LENGTH', (c) => [flipBit(c.request(1, getReq('/a'))[0], 5 * 8 + 3)]],
    ['the second cell first (reorder)', 'MM_ERR_LAYER_AUTH', (c) => { const [a] = c.request(1, getReq('/a')); const [b] = c.request(2, getReq('/b')); return [b, a] }],
    ['one cell missing (gap)', 'MM_ERR_LAYER_AUTH', (c) => { c.request(1, getReq('/a')); return c.request(2, getReq('/b')) }],
  ]
  let circId = 100
  for (const [name, code, make] of cases) {
    const id = circId++
    const c = f.connect('L1', id)
    const cells = make(c)
    const n = f.sent.length
    const calls = f.calls.length
    const seen = f.codes().length
    for (const cell of cells) f.deliver('L1', cell)
    await tick()
    t.same(f.sent.slice(n).map((s) => [s.cell.circId, s.cell.cmd, s.cell.data[0]]), [[id, ChannelCommand.DESTROY, HopError.INTEGRITY]], `${name}: DESTROY INTEGRITY and nothing else`)
    t.equal(f.circuits.get(`L1/${id}`), undefined, `${name}: the circuit is gone`)
    t.equal(f.calls.length, calls, `${name}: no request handled`)
    t.equal(f.codes()[seen], code, `${name}: refused with ${code}`)
  }
  // a repeat: the good cell is served once; its copy ends the circuit
  const c = f.connect('L1', 200)
  const [good] = c.request(1, getReq('/once'))
  f.deliver('L1', good)
  await tick()
  t.equal(f.calls.length, 1, 'the good cell is served')
  f.deliver('L1', good)
  await tick()
  t.equal(f.calls.length, 1, 'its repeat is not')
  t.equal(f.circuits.get('L1/200'), undefined, 'and the circuit is gone')
  // honest circuits on the same channel go on
  const h = f.connect('L1', 300)
  const from = f.sent.length
  for (const cell of h.request(1, getReq('/fine'))) f.deliver('L1', cell)
  await tick()
  t.equal(h.responses(from).get(1)?.status, 200, 'a new circuit on the same channel is served')
})

t.test('authentic cells the final hop does not take are dropped; the circuit goes on', async t => {
  const f = setup()
  const c = f.connect()
  f.deliver('L1', c.relay(RelayCommand.EXTEND, Buffer.alloc(40)))
  t.equal(f.codes().at(-1), 'MM_ERR_RELAY_CMD', 'only DATA and DROP at the final hop')
  f.deliver('L1', c.relay(RelayCommand.DATA, Buffer.from('00000000', 'hex')))
  t.equal(f.codes().at(-1), 'MM_ERR_LENGTH', 'short DATA body')
  const n = f.sent.length
  f.deliver('L1', c.relay(RelayCommand.DROP, Buffer.alloc(0)))
  t.equal(f.sent.length, n, 'DROP is silent')
  const [good] = c.request(1, getReq('/a'))
  f.deliver('L2', good)
  t.equal(f.codes().at(-1), 'MM_ERR_NO_CIRCUIT', 'same circuit id on another channel is another circuit')
  f.deliver('L1', encodeChannelCell(7, ChannelCommand.CREATED, Buffer.alloc(64)))
  t.equal(f.codes().at(-1), 'MM_ERR_CHANNEL_CMD')
  const from = f.sent.length
  f.deliver('L1', good)
  await tick()
  t.equal(c.responses(from).get(1)?.status, 200, 'the circuit still serves')
})

t.test('stream pieces out of sequence: the stream is refused with MM_ERR_STREAM_SEQUENCE, never handled', async t => {
  const f = setup()
  const c = f.connect()
  // the request, cut into pieces of 2009 data bytes, sent by a client that reorders them
  const msg = encodeRequest({ method: 'POST', path: '/v1/rooms/lobby/messages', headers: {}, body: Buffer.concat([Buffer.alloc(1949, 'A'), Buffer.alloc(2009, 'B'), Buffer.alloc(2009, 'C'), Buffer.alloc(100, 'D')]) })
  const ps = fragment(1, msg, 2009 + 13).map((b) => decodeData(b))
  const from = f.sent.length
  for (const i of [0, 2, 1, 3]) f.deliver('L1', c.piece(ps[i]))
  await tick()
  t.equal(f.calls.length, 0, 'the handler never sees it')
  const r = c.responses(from).get(1)
  t.same([r?.status, errorCode(r)], [400, 'MM_ERR_STREAM_SEQUENCE'], 'the client is told')
  t.same(f.codes(), ['MM_ERR_STREAM_SEQUENCE', 'MM_ERR_STREAM_SEQUENCE', 'MM_ERR_STREAM_SEQUENCE'], 'refused once, its later pieces ignored')
  t.equal(f.circuits.get('L1/7')?.streams.size, 0, 'nothing held')
  // the same request in order, on the next stream
  const from2 = f.sent.length
  for (const p of fragment(2, msg, 2009 + 13)) f.deliver('L1', c.relay(RelayCommand.DATA, p))
  await tick()
  t.equal(f.calls.length, 1)
  t.same(f.calls[0].body.toString('latin1'), 'A'.repeat(1949) + 'B'.repeat(2009) + 'C'.repeat(2009) + 'D'.repeat(100), 'in order it arrives exactly as sent')
  t.equal(c.responses(from2).get(2)?.status, 200)
})

t.test('half-received bytes are capped per circuit and across the hop; one-cell requests still pass', async t => {
  const f = setup({ maxCircuitBytes: 5000, maxBufferedBytes: 8000 })
  const a = f.connect('L1', 1)
  const b = f.connect('L1', 2)
  const first = (id: number, total: number): DataMsg => ({ streamId: id, flags: 0, offset: 0, total, data: Buffer.from('x') })
  const from = f.sent.length
  f.deliver('L1', a.piece(first(1, 4000)))
  f.deliver('L1', a.piece(first(2, 4000)))
  t.equal(errorCode(a.responses(from).get(2)), 'MM_ERR_STREAM_BUDGET', 'over the circuit\'s cap')
  t.equal(a.responses(from).get(2)?.status, 503)
  f.deliver('L1', b.piece(first(1, 4000)))
  const fromB = f.sent.length
  f.deliver('L1', b.piece(first(2, 1000)))
  t.equal(errorCode(b.responses(fromB).get(2)), 'MM_ERR_STREAM_BUDGET', 'over the hop\'s budget (4000 + 4000 held)')
  t.equal(f.hop.buffered.used, 8000)
  for (const cell of b.request(3, getReq('/small'))) f.deliver('L1', cell)
  await tick()
  t.equal(b.responses(fromB).get(3)?.status, 200, 'a one-cell request is never held, so it passes')
  f.deliver('L1', encodeChannelCell(1, ChannelCommand.DESTROY, Buffer.from([0])))
  t.equal(f.hop.buffered.used, 4000, 'a destroyed circuit releases its bytes')
})

t.test('half-received requests expire: 408 MM_ERR_STREAM_EXPIRED, bytes released, later pieces ignored', async t => {
  const f = setup({ streamTtlMs: 1000 })
  const c = f.connect()
  const ps = fragment(1, encodeRequest({ method: 'POST', path: '/slow', headers: {}, body: Buffer.alloc(5000) }), forwardBodyMax(1))
  const from = f.sent.length
  f.deliver('L1', c.relay(RelayCommand.DATA, ps[0]))
  t.ok(f.hop.buffered.used > 5000)
  f.time.now = 999
  f.hop.expireStreams()
  t.equal(c.responses(from).size, 0, 'not yet')
  f.time.now = 1000
  f.hop.expireStreams()
  const r = c.responses(from).get(1)
  t.same([r?.status, errorCode(r)], [408, 'MM_ERR_STREAM_EXPIRED'])
  t.equal(f.hop.buffered.used, 0, 'released')
  for (const p of ps.slice(1)) f.deliver('L1', c.relay(RelayCommand.DATA, p))
  await tick()
  t.equal(f.calls.length, 0, 'the rest of it is ignored')
  t.equal(f.codes().at(-1), 'MM_ERR_STREAM_SEQUENCE')
  // expiry also runs when the circuit sends its next cell
  const p2 = fragment(2, encodeRequest({ method: 'POST', path: '/slow', headers: {}, body: Buffer.alloc(5000) }), forwardBodyMax(1))
  const from2 = f.sent.length
  f.deliver('L1', c.relay(RelayCommand.DATA, p2[0]))
  f.time.now = 2500
  for (const cell of c.request(3, getReq('/next'))) f.deliver('L1', cell)
  await tick()
  const rs = c.responses(from2)
  t.same([rs.get(2)?.status, rs.get(3)?.status], [408, 200])
})

t.test('CREATE: reused circuit id, wrong identity, full table', async t => {
  const f = setup({ maxCircuits: 2 })
  f.connect('L1', 1)
  const { create } = clientStart({ identityKey: fixedIdentity.publicDer })
  f.deliver('L1', encodeChannelCell(1, ChannelCommand.CREATE, create))
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_CIRC_ID', 'a live circuit id is not reused')
  const forOther = clientStart({ identityKey: (await import('../../../src/onion/crypto/primitives.js')).rsaGenerate(2048).publicDer })
  f.deliver('L1', encodeChannelCell(2, ChannelCommand.CREATE, forOther.create))
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_HANDSHAKE', 'CREATE for another identity')
  t.equal(f.circuits.size, 1)
  f.connect('L1', 3)
  const n = f.sent.length
  f.deliver('L1', encodeChannelCell(4, ChannelCommand.CREATE, create))
  t.equal(f.sent[n]?.cell.cmd, ChannelCommand.DESTROY, 'full: DESTROY')
  t.equal(f.sent[n]?.cell.data[0], HopError.BUSY, 'reason BUSY (4)')
  t.equal(f.circuits.size, 2)
})

t.test('DESTROY and closeChannel wipe circuits; a response after DESTROY is not sent', async t => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const f = setup({ handler: async () => { await gate; return { status: 200, headers: {}, body: Buffer.from('late') } } })
  const c = f.connect('L1', 7)
  const circuit = f.circuits.get('L1/7')!
  for (const cell of c.request(1, encodeRequest({ method: 'GET', path: '/slow', headers: {}, body: Buffer.alloc(0) }))) f.deliver('L1', cell)
  f.deliver('L1', encodeChannelCell(7, ChannelCommand.DESTROY, Buffer.from([0])))
  t.equal(f.circuits.size, 0)
  t.ok(circuit.hop.serialize().subarray(1, 65).every((b) => b === 0), 'both keys zeroed')
  t.same(f.events.at(-1), { type: 'destroyed' })
  const n = f.sent.length
  release()
  await tick(); await tick()
  t.equal(f.sent.length, n, 'no response on a destroyed circuit')
  f.deliver('L1', c.relay(RelayCommand.DROP, Buffer.alloc(0)))
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_NO_CIRCUIT')
  f.connect('L1', 8); f.connect('L1', 9); f.connect('L2', 8)
  f.hop.closeChannel('L1')
  t.same([...f.circuits.keys()], ['L2/8'], 'closeChannel drops only that channel\'s circuits')
})

t.test('a handler that throws yields a 500, not a crash', async t => {
  const f = setup({ handler: async () => { throw new Error('boom') } })
  const c = f.connect()
  const from = f.sent.length
  for (const cell of c.request(3, encodeRequest({ method: 'GET', path: '/x', headers: {}, body: Buffer.alloc(0) }))) f.deliver('L1', cell)
  await tick(); await tick()
  const r = c.responses(from).get(3)
  t.equal(r?.status, 500)
  t.equal(errorCode(r), 'MM_ERR_INTERNAL')
})
