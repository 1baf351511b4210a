// The middle hop as pure functions (src/onion/circuits/middle-hop.ts, docs/PROTOCOL.md §5):
// each case gives a HopState made by a real handshake with the recorded identity and one
// input (a cell built by a ClientOnion, a refusal, a timeout), and checks the exact
// actions and the state after: the verbs per direction, CREATE admission and answer,
// FORWARD / EXTEND (P7) / DROP / other commands, EXTENDED and the refusals relayed,
// backward wrapping, DESTROY both ways, replayed and tampered layers (P6), and the
// HopError table every hop shares.
import { DIRECTORY_REFUSED, type DirectoryDocument } from '../../../src/onion/circuits/directory-cache.js'
import t from 'tap'
import { ChannelCommand } from '../../../src/onion/cells/channel-cell.js'
import { CELL_DATA, forwardBodyMax } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { HopError, decodeData, decodeError, encodeData, encodeExtend, resetData } from '../../../src/onion/cells/relay-msg.js'
import { decodeResponse, encodeRequest } from '../../../src/onion/streams/envelope.js'
import { Reassembler, fragment } from '../../../src/onion/streams/reassembly.js'
import { ClientOnion } from '../../../src/onion/circuits/client-onion.js'
import { HOP_ERRORS, hopErrorMeaning, hopErrorName, relayedRefusal } from '../../../src/onion/circuits/hop-error.js'
import { HopState } from '../../../src/onion/circuits/hop-state.js'
import * as middle from '../../../src/onion/circuits/middle-hop.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { clientFinish, clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { fixedIdentity, flipBit } from '../helpers.js'

const keyring = { identityPrivate: fixedIdentity.privateDer, fingerprint: fixedIdentity.fingerprint }
const FP2 = Buffer.alloc(32, 0x22)
const next: Descriptor = { v: 1, role: 'relay', nickname: 'two', host: '127.0.0.12', port: 4432, identityKey: fixedIdentity.publicDer.toString('base64'), fingerprint: FP2.toString('hex'), tlsCert: '', tlsFingerprint: '', published: 0, expires: 0, signature: '' }
const listed: middle.ListedHops = (fp) => (fp === next.fingerprint ? next : undefined)

/** a hop made by a real CREATE, and the client's onion for it */
function circuit (): { hop: HopState, onion: ClientOnion } {
  const { state, create } = clientStart({ identityKey: fixedIdentity.publicDer })
  const { hop, actions } = middle.answerCreate(keyring, create)
  t.equal(actions[0]?.type, 'created')
  const onion = new ClientOnion()
  onion.addHop(fixedIdentity.fingerprint, clientFinish(state, (actions[0] as { data: Buffer }).data))
  return { hop: hop!, onion }
}

/** the ERROR an 'answer' action carries, as the client reads it */
function errorOf (onion: ClientOnion, a: middle.MiddleHopAction | undefined): { hop: number, code: number, reason: string } {
  if (a?.type !== 'answer') throw new Error(`expected an answer, got ${a?.type}`)
  const u = onion.unwrapBackward(Buffer.concat([a.data, Buffer.alloc(CELL_DATA - a.data.length)]))
  if (u.cmd !== RelayCommand.ERROR) throw new Error(`expected ERROR, got ${RelayCommand[u.cmd]}`)
  t.equal(a.error, decodeError(u.body).code, 'the action names the code it carries')
  return { hop: u.hop, ...decodeError(u.body) }
}

const extendBody = (o: Partial<{ fingerprint: Buffer, host: string, port: number }> = {}): Buffer =>
  encodeExtend({ fingerprint: o.fingerprint ?? FP2, host: o.host ?? next.host, port: o.port ?? next.port, create: Buffer.from('create-body') })

t.test('verbs: what each side may send', async (t) => {
  t.same([1, 3, 4].map((c) => middle.fromPrevVerb(c)), ['create', 'relay', 'destroy'])
  t.same(middle.fromPrevVerb(ChannelCommand.CREATED), { close: 'channel command 2 is not valid towards the responder' })
  t.same(middle.fromPrevVerb(ChannelCommand.AUTH), { close: 'channel command 5 is not valid towards the responder' })
  t.same([2, 3, 4].map((c) => middle.fromNextVerb(c)), ['created', 'relay', 'destroy'])
  t.same(middle.fromNextVerb(ChannelCommand.CREATE), { close: 'channel command 1 is not valid towards the initiator' })
})

t.test('CREATE admission and answer', async (t) => {
  const taken: string[] = []
  const take = (ok: boolean) => (budget: 'relay' | 'address') => { taken.push(budget); return ok }
  const busy = [{ type: 'destroy', toward: 'prev', reason: HopError.BUSY }]
  const base = { reusesLiveId: false, fromListedRelay: false, tableFull: false }
  t.same(middle.admitCreate({ ...base, reusesLiveId: true, takeToken: take(true) }), { close: 'CREATE reuses a live circuit id' })
  t.same(middle.admitCreate({ ...base, takeToken: take(false) }), { refuse: busy, code: 'MM_ERR_CREATE_RATE' }, 'over the address budget: BUSY')
  t.equal(middle.admitCreate({ ...base, takeToken: take(true) }), 'admit')
  t.same(taken, ['address', 'address'])
  t.same(middle.admitCreate({ ...base, fromListedRelay: true, takeToken: take(false) }), { refuse: busy, code: 'MM_ERR_CREATE_RATE' }, 'a proven listed relay has a budget too, not none')
  t.equal(middle.admitCreate({ ...base, fromListedRelay: true, takeToken: take(true) }), 'admit')
  t.same(taken.slice(2), ['relay', 'relay'], 'its own (the relay) budget')
  t.same(middle.admitCreate({ ...base, tableFull: true, takeToken: take(true) }), { refuse: busy, code: 'MM_ERR_BUSY' }, 'a full table refuses BUSY')
  t.equal(taken.length, 4, 'and takes no token')
  t.same(middle.circuitTableFull(), busy)
  t.same(middle.createInUse(), [{ type: 'destroy', toward: 'prev', reason: HopError.IN_USE }, { type: 'drop', what: 'create on a circuit id in use' }])

  const bad = middle.answerCreate(keyring, Buffer.from([...Buffer.alloc(32, 1), 0x01, 0x00, ...Buffer.alloc(256, 7)]))
  t.equal(bad.hop, undefined, 'no hop for a CREATE sealed to no key')
  t.same(bad.actions.map((a) => a.type), ['drop', 'destroy'])
  t.same(bad.actions[1], { type: 'destroy', toward: 'prev', reason: HopError.HANDSHAKE })
  t.equal((bad.actions[0] as { err: { code: string } }).err.code, 'MM_ERR_HANDSHAKE')
  const { hop } = circuit()
  t.equal(hop.nextCircId, 0, 'a new hop is not extended')
})

t.test('RELAY from the previous hop', async (t) => {
  const { hop, onion } = circuit()
  // FORWARD before any EXTEND: ERROR UNREACHABLE from hop 1
  let r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.FORWARD, Buffer.alloc(40)), listed)
  t.equal(r.save, true)
  t.same(errorOf(onion, r.actions[0]), { hop: 1, code: HopError.UNREACHABLE, reason: 'no next hop on this circuit' })
  // DROP: nothing, but the counter moved (saved)
  r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.DROP, Buffer.alloc(0)), listed)
  t.same(r, { actions: [], save: true })
  // DATA at a relay that is no directory cache (or not a DATA body)
  r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.DATA, Buffer.alloc(9)), listed)
  t.same(errorOf(onion, r.actions[0]), { hop: 1, code: HopError.PROTOCOL, reason: 'DATA is for the final hop, or a directory request on a circuit that ends here' })
  r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.DATA, Buffer.alloc(9)), listed, () => '{}')
  t.equal(errorOf(onion, r.actions[0]).code, HopError.PROTOCOL, 'a malformed DATA body is refused even by a cache')

  // P7: EXTEND only to a listed hop at exactly its listed address
  for (const [name, body] of [
    ['an unlisted fingerprint', extendBody({ fingerprint: Buffer.alloc(32, 9), host: '127.0.0.1', port: 22 })],
    ['the listed fingerprint at another host', extendBody({ host: '169.254.169.254' })],
    ['the listed fingerprint at another port', extendBody({ port: 22 })],
  ] as const) {
    r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.EXTEND, body), listed)
    const e = errorOf(onion, r.actions[0])
    t.same([e.hop, e.code], [1, HopError.NOT_LISTED], `${name}: NOT_LISTED`)
    t.same(r.actions[1], { type: 'end', reason: HopError.NOT_LISTED, code: 'MM_ERR_EXTEND_FAILED' }, `${name}: the circuit ends`)
    t.match(e.reason, /is not a hop listed in the consensus$/)
  }
  const malformed = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.EXTEND, Buffer.alloc(20)), listed).actions
  t.same(errorOf(onion, malformed[0]).reason, 'malformed EXTEND')
  t.same(malformed[1], { type: 'end', reason: HopError.PROTOCOL, code: 'MM_ERR_EXTEND_FAILED' }, 'a failed EXTEND ends the circuit (after the ERROR)')
  t.equal(hop.nextCircId, 0, 'no refusal extended the circuit')

  r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.EXTEND, extendBody()), listed)
  t.same(r.actions, [{ type: 'extend', fingerprint: FP2, target: next, create: Buffer.from('create-body') }], 'a listed hop: extend to it')
  t.same(middle.extendTo(hop, 77, FP2, Buffer.from('create-body')), [{ type: 'create-next', data: Buffer.from('create-body') }])
  t.same([hop.nextCircId, hop.nextFingerprint], [77, FP2])
  r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.EXTEND, extendBody()), listed)
  t.equal(errorOf(onion, r.actions[0]).reason, 'circuit is already extended')
  t.same(r.actions[1], { type: 'end', reason: HopError.PROTOCOL, code: 'MM_ERR_EXTEND_FAILED' }, 'one EXTEND per circuit: a second one ends it')
  t.equal(r.actions.length, 2)

  // FORWARD once extended: the inner layer goes on
  const inner = Buffer.from('the next hop\'s layer')
  r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.FORWARD, inner), listed)
  t.same(r.actions, [{ type: 'forward', data: inner }])
  t.equal(errorOf(onion, middle.nextUnreachable(hop)).reason, 'no next hop on this circuit')
})

t.test('a cell that does not open at its position ends the circuit: DESTROY INTEGRITY back, no state saved (P6)', async t => {
  for (const [name, make] of [
    ['a repeat', (onion: ReturnType<typeof circuit>['onion'], cell: Buffer) => cell],
    ['a flipped ciphertext bit', (onion: ReturnType<typeof circuit>['onion']) => flipBit(onion.wrapForward(1, RelayCommand.DROP, Buffer.alloc(0)), 8 * 60)],
    ['a gap (one cell never arrived)', (onion: ReturnType<typeof circuit>['onion']) => { onion.wrapForward(1, RelayCommand.DROP, Buffer.alloc(0)); return onion.wrapForward(1, RelayCommand.DROP, Buffer.alloc(0)) }],
  ] as const) {
    const { hop, onion } = circuit()
    const cell = onion.wrapForward(1, RelayCommand.DROP, Buffer.alloc(0))
    t.equal(middle.onRelayFromPrev(hop, cell, listed).save, true)
    const before = hop.serialize()
    const r = middle.onRelayFromPrev(hop, make(onion, cell), listed)
    t.same([r.save, r.end], [false, true], `${name}: not saved, the circuit ends`)
    t.same(r.actions.map((a) => a.type === 'destroy' ? ['destroy', a.toward, a.reason] : [a.type, (a as { what: string }).what]), [['drop', 'peel'], ['destroy', 'prev', HopError.INTEGRITY]], `${name}: dropped and DESTROY INTEGRITY back`)
    t.equal(((r.actions[0] as { err: { code: string } }).err).code, 'MM_ERR_LAYER_AUTH')
    t.ok(hop.serialize().equals(before), `${name}: the record is unchanged`)
  }
})

t.test('answers from the next hop', async (t) => {
  const { hop, onion } = circuit()
  middle.extendTo(hop, 5, FP2, Buffer.alloc(1))
  const created = Buffer.alloc(CELL_DATA, 3)
  const [ext] = middle.onCreated(hop, created)
  const u = onion.unwrapBackward(Buffer.concat([(ext as { data: Buffer }).data, Buffer.alloc(100)]))
  t.same([u.hop, u.cmd, u.body.length], [1, RelayCommand.EXTENDED, 64], 'EXTENDED from this hop with the 64-byte CREATED')
  t.ok(u.body.equals(created.subarray(0, 64)))
  // one call, both its actions: every answer takes the next backward position, so each is read once, in order
  const timedOut = middle.onExtendTimeout(hop)
  t.same(errorOf(onion, timedOut[0]), { hop: 1, code: HopError.UNREACHABLE, reason: 'next hop did not answer CREATE' })
  t.same(timedOut[1], { type: 'end', reason: HopError.UNREACHABLE, code: 'MM_ERR_EXTEND_FAILED' }, 'a timed-out EXTEND ends the circuit')

  const refusals: [number, HopError, string][] = [
    [HopError.HANDSHAKE, HopError.HANDSHAKE, 'next hop refused CREATE (HANDSHAKE)'],
    [HopError.BUSY, HopError.BUSY, 'next hop refused CREATE (BUSY)'],
    [HopError.PROTOCOL, HopError.UNREACHABLE, 'next hop refused CREATE (UNREACHABLE)'],
    [0, HopError.UNREACHABLE, 'next hop refused CREATE (UNREACHABLE)'],
  ]
  for (const [reason, code, text] of refusals) {
    middle.extendTo(hop, 5, FP2, Buffer.alloc(1))
    const refused = middle.onCreateRefused(hop, reason)
    t.same(errorOf(onion, refused[0]), { hop: 1, code, reason: text }, `DESTROY(${reason}) is reported as ${HopError[code]}`)
    t.same(refused[1], { type: 'end', reason: code, code: 'MM_ERR_EXTEND_FAILED' }, 'and the circuit ends (no second EXTEND)')
    t.same([hop.nextCircId, hop.nextFingerprint], [0, null], 'the circuit is no longer extended')
  }
  const closed = middle.onCreateRefused(hop, middle.NEXT_CHANNEL_CLOSED, 'closed the channel before answering CREATE')
  t.equal(errorOf(onion, closed[0]).reason, 'next hop closed the channel before answering CREATE (UNREACHABLE)')

  // a later hop's layer, wrapped: the client peels this hop's layer and finds FORWARD's body
  const later = Buffer.alloc(CELL_DATA)
  later.writeUInt16BE(100, 0)
  const w = middle.onRelayFromNext(hop, later)
  t.equal(w.save, true)
  t.equal(w.actions[0].type, 'backward')
  const opened = onion.hops[0].backward.open((w.actions[0] as { data: Buffer }).data)
  t.same([opened.cmd, opened.body.length], [RelayCommand.FORWARD, 2 + 100 + 16])
  const tooLong = Buffer.alloc(CELL_DATA)
  tooLong.writeUInt16BE(CELL_DATA, 0)
  const bad = middle.onRelayFromNext(hop, tooLong)
  t.same([bad.save, bad.actions[0].type, (bad.actions[0] as { what: string }).what], [false, 'drop', 'wrap'])
})

t.test('DESTROY both ways', async (t) => {
  const a = circuit()
  t.same(middle.onDestroyFromPrev(a.hop), [], 'not extended: nothing to pass on')
  const b = circuit()
  middle.extendTo(b.hop, 9, FP2, Buffer.alloc(1))
  t.same(middle.onDestroyFromPrev(b.hop), [{ type: 'destroy', toward: 'next', reason: 0 }], 'forward: reason 0')
  t.same(middle.onDestroyFromNext(circuit().hop, HopError.BUSY), [{ type: 'destroy', toward: 'prev', reason: HopError.BUSY }], 'backward: the reason passed on')
  t.same(middle.onDestroyFromNext(undefined, 0), [{ type: 'destroy', toward: 'prev', reason: 0 }])
  t.same(middle.unknownCircuit(), [{ type: 'destroy', toward: 'prev', reason: HopError.PROTOCOL }, { type: 'drop', what: 'relay on unknown circuit' }])
  t.same(middle.storeUnavailable(), [{ type: 'destroy', toward: 'prev', reason: HopError.BUSY }])
})

t.test('one table of HopError meanings', async (t) => {
  const codes = Object.values(HopError).filter((v): v is number => typeof v === 'number')
  t.same(Object.keys(HOP_ERRORS).map(Number), codes, 'every HopError has an entry, and only those')
  t.same(codes.map(relayedRefusal), [HopError.UNREACHABLE, HopError.UNREACHABLE, HopError.HANDSHAKE, HopError.BUSY, HopError.UNREACHABLE, HopError.UNREACHABLE, HopError.UNREACHABLE])
  t.same(codes.map((c) => HOP_ERRORS[c as HopError].onExtend), ['MM_ERR_NOT_LISTED', 'MM_ERR_CIRCUIT_BUILD', 'MM_ERR_HOP_AUTH', 'MM_ERR_CIRCUIT_BUILD', 'MM_ERR_CIRCUIT_BUILD', 'MM_ERR_CIRCUIT_BUILD', 'MM_ERR_CIRCUIT_INTEGRITY'], 'the client codes of docs/PROTOCOL.md §5.4 for an ERROR answering EXTEND')
  t.same(codes.map((c) => HOP_ERRORS[c as HopError].onCreate), ['MM_ERR_CIRCUIT_BUILD', 'MM_ERR_CIRCUIT_BUILD', 'MM_ERR_HOP_AUTH', 'MM_ERR_CIRCUIT_BUILD', 'MM_ERR_CIRCUIT_BUILD', 'MM_ERR_CIRCUIT_ID_IN_USE', 'MM_ERR_CIRCUIT_INTEGRITY'], 'and for a DESTROY answering CREATE')
  t.same([hopErrorMeaning(0), hopErrorMeaning(8), relayedRefusal(99)], [undefined, undefined, HopError.UNREACHABLE])
  t.same([hopErrorName(4), hopErrorName(0), hopErrorName(200)], ['BUSY', 'reason 0', 'reason 200'])
})

t.test('a directory request on a circuit that ends here (PROTOCOL §7.3): the consensus as received, in DATA this hop originates', async (t) => {
  const doc = JSON.stringify({ v: 1, relays: Array.from({ length: 40 }, (_, i) => ({ nickname: `relay-${i}`, pad: 'x'.repeat(200) })) })
  const ask = (h: HopState, o: ClientOnion, req: { method: string, path: string }, get: DirectoryDocument = () => doc, streamId = 1) => {
    const body = fragment(streamId, encodeRequest({ ...req, headers: {}, body: Buffer.alloc(0) }), forwardBodyMax(1))
    t.equal(body.length, 1, 'the request is one piece')
    const r = middle.onRelayFromPrev(h, o.wrapForward(1, RelayCommand.DATA, body[0]), listed, get)
    t.equal(r.save, true, 'positions moved: the state is saved')
    const asm = new Reassembler()
    let msg: Buffer | undefined
    for (const a of r.actions) {
      t.equal(a.type, 'answer')
      const u = o.unwrapBackward(Buffer.concat([(a as { data: Buffer }).data, Buffer.alloc(CELL_DATA - (a as { data: Buffer }).data.length)]))
      t.same([u.hop, u.cmd], [1, RelayCommand.DATA], 'DATA originated by hop 1')
      const got = asm.push(decodeData(u.body), 0)
      if (got.kind === 'message') msg = got.data
    }
    return { res: decodeResponse(msg!), cells: r.actions.length }
  }
  const { hop, onion } = circuit()
  const ok = ask(hop, onion, { method: 'GET', path: '/consensus' })
  t.equal(ok.res.status, 200)
  t.equal(ok.res.body.toString(), doc, 'the document byte for byte')
  t.ok(ok.cells > 1, `a document over one cell comes in ${ok.cells} cells`)
  // the same circuit can ask again (the stream ids go up)
  t.equal(ask(hop, onion, { method: 'GET', path: '/consensus' }, undefined, 2).res.status, 200)
  const code = (r: { res: { status: number, body: Buffer } }) => [r.res.status, JSON.parse(r.res.body.toString()).error.code]
  t.same(code(ask(hop, onion, { method: 'GET', path: '/v1/rooms/lobby/messages' }, undefined, 3)), [404, 'MM_ERR_DIR_REQUEST'], 'nothing but the consensus')
  t.same(code(ask(hop, onion, { method: 'POST', path: '/consensus' }, undefined, 4)), [404, 'MM_ERR_DIR_REQUEST'])
  t.same(code(ask(hop, onion, { method: 'GET', path: '/consensus' }, () => null, 5)), [503, 'MM_ERR_NO_CONSENSUS'], 'none yet')
  t.same(code(ask(hop, onion, { method: 'GET', path: '/consensus' }, () => DIRECTORY_REFUSED, 6)), [429, 'MM_ERR_DIR_RATE'], 'the asker over its budget (the relay meters, directory-budget.test.ts)')
  // a request in two pieces: the cache keeps no stream state
  const two = encodeData({ streamId: 7, flags: 0, offset: 0, total: 40, data: Buffer.alloc(20) })
  const r = middle.onRelayFromPrev(hop, onion.wrapForward(1, RelayCommand.DATA, two), listed, () => doc)
  t.same(r.actions.map((a) => a.type), ['answer'], 'a piece that is not the whole request: one error response (MM_ERR_DIR_REQUEST)')
  // a RESET needs no answer
  const z = circuit()
  t.same(middle.onRelayFromPrev(z.hop, z.onion.wrapForward(1, RelayCommand.DATA, resetData(1)), listed, () => doc), { actions: [], save: true }, 'a RESET: no answer')
  // an extended circuit does not end here: DATA to this hop is refused, the cache is not asked
  const x = circuit()
  x.hop.nextCircId = 7
  x.hop.nextFingerprint = FP2
  let asked = false
  const e = middle.onRelayFromPrev(x.hop, x.onion.wrapForward(1, RelayCommand.DATA, fragment(1, encodeRequest({ method: 'GET', path: '/consensus', headers: {}, body: Buffer.alloc(0) }), forwardBodyMax(1))[0]), listed, () => { asked = true; return doc })
  t.equal(errorOf(x.onion, e.actions[0]).code, HopError.PROTOCOL)
  t.equal(asked, false)
})
