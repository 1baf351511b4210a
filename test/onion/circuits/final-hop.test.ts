// FinalHop (docs/PROTOCOL.md §6) with an in-memory Map as its circuit table and a fake
// `send`: CREATE → CREATED, a request split over several cells reaches the handler once
// and its response comes back as DATA cells a ClientOnion opens; malformed envelopes get
// a 400, too many streams an error response, bad cells are dropped without effect, and
// DESTROY wipes the circuit (P5, P6, P9).
import t from 'tap'
import { CELL_SIZE, forwardBodyMax } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { DataFlag, HopError, decodeData, encodeData } from '../../../src/onion/cells/relay-msg.js'
import { ClientOnion } from '../../../src/onion/circuits/client-onion.js'
import { FinalHop, type FinalCircuit, type FinalHopEvent } from '../../../src/onion/circuits/final-hop.js'
import { clientFinish, clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { decodeResponse, encodeRequest, type ApiRequest, type ApiResponse } from '../../../src/onion/streams/envelope.js'
import { MAX_STREAMS, Reassembler, fragment } from '../../../src/onion/streams/reassembly.js'
import { fixedIdentity, flipBit } from '../helpers.js'

const tick = () => new Promise((resolve) => setImmediate(resolve))

function setup (opts: { maxCircuits?: number, handler?: (r: ApiRequest) => Promise<ApiResponse> } = {}) {
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
    /** every response whose cells arrived on this circuit since index `from` */
    const responses = (from: number) => {
      const r = new Reassembler()
      const out = new Map<number, ApiResponse>()
      for (const s of sent.slice(from).filter((s) => s.channel === channel && s.cell.circId === circId && s.cell.cmd === ChannelCommand.RELAY)) {
        const u = onion.unwrapBackward(s.cell.data)
        if (u.hop !== 1 || u.cmd !== RelayCommand.DATA) throw new Error('unexpected backward cell')
        const m = decodeData(u.body)
        const whole = r.push(m)
        if (whole) out.set(m.streamId, decodeResponse(whole))
      }
      return out
    }
    return { onion, relay, request, responses }
  }
  return { hop, sent, events, calls, circuits, deliver, connect }
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
  for (const bad of [Buffer.from([2, 3]), Buffer.from([1]), Buffer.from('0103474554000100', 'hex'), Buffer.from('0103474554000b2f762f000003', 'hex')]) {
    for (const cell of c.request(9, bad)) f.deliver('L1', cell)
  }
  await tick()
  t.equal(f.calls.length, 0, 'handler never called')
  const rs = c.responses(from)
  t.equal(rs.get(9)?.status, 400)
  t.ok(['MM_ERR_ENVELOPE', 'MM_ERR_LENGTH'].includes(errorCode(rs.get(9))), `code ${errorCode(rs.get(9))}`)
  const from2 = f.sent.length
  for (const cell of c.request(10, encodeRequest({ method: 'GET', path: '/ok', headers: {}, body: Buffer.alloc(0) }))) f.deliver('L1', cell)
  await tick()
  t.equal(c.responses(from2).get(10)?.status, 200)
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
  const open = (id: number) => f.deliver('L1', c.relay(RelayCommand.DATA, encodeData({ streamId: id, flags: 0, data: Buffer.from('part') })))
  for (let id = 1; id <= MAX_STREAMS; id++) open(id)
  const from = f.sent.length
  open(MAX_STREAMS + 1)
  const r = c.responses(from).get(MAX_STREAMS + 1)
  t.ok(r && r.status >= 400 && r.status < 500, `4xx (${r?.status})`)
  t.equal(errorCode(r), 'MM_ERR_STREAMS')
  t.equal(f.circuits.get('L1/7')?.streams.size, MAX_STREAMS)
})

t.test('bad cells are dropped and change nothing', async t => {
  const f = setup()
  const c = f.connect()
  const good = c.relay(RelayCommand.DATA, encodeData({ streamId: 1, flags: DataFlag.END, data: encodeRequest({ method: 'GET', path: '/a', headers: {}, body: Buffer.alloc(0) }) }))
  const rec = f.circuits.get('L1/7')!.hop.serialize()
  for (const bit of [5 * 8 + 3, 5 * 8 + 100, 8 * 1000]) f.deliver('L1', flipBit(good, bit))
  t.same(f.events.filter((e) => e.type === 'rejected').map((e) => (e as { code: string }).code), ['MM_ERR_LAYER_AUTH', 'MM_ERR_LAYER_AUTH', 'MM_ERR_LAYER_AUTH'])
  t.same(f.circuits.get('L1/7')!.hop.serialize(), rec, 'hop state unchanged')
  f.deliver('L1', good)
  await tick()
  t.equal(f.calls.length, 1, 'the good cell still goes through')
  f.deliver('L1', good)
  await tick()
  t.equal(f.calls.length, 1, 'its replay does not')
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_REPLAY')
  f.deliver('L1', c.relay(RelayCommand.EXTEND, Buffer.alloc(40)))
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_RELAY_CMD', 'only DATA and DROP at the final hop')
  f.deliver('L1', c.relay(RelayCommand.DATA, Buffer.from('00000000', 'hex')))
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_LENGTH', 'short DATA body')
  const n = f.sent.length
  f.deliver('L1', c.relay(RelayCommand.DROP, Buffer.alloc(0)))
  t.equal(f.sent.length, n, 'DROP is silent')
  f.deliver('L2', good)
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_NO_CIRCUIT', 'same circuit id on another channel is another circuit')
  f.deliver('L1', encodeChannelCell(7, ChannelCommand.CREATED, Buffer.alloc(64)))
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_CHANNEL_CMD')
})

t.test('CREATE: reused circuit id, wrong identity, full table', async t => {
  const f = setup({ maxCircuits: 2 })
  f.connect('L1', 1)
  const { create } = clientStart({ identityKey: fixedIdentity.publicDer })
  f.deliver('L1', encodeChannelCell(1, ChannelCommand.CREATE, create))
  t.equal((f.events.at(-1) as { code: string }).code, 'MM_ERR_CIRC_ID', 'a live circuit id is not reused')
  const forOther = clientStart({ identityKey: (await import('../../../src/onion/crypto/primitives.js')).rsaGenerate(1024).publicDer })
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
