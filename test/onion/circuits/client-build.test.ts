// The pure circuit build (src/onion/circuits/client-build.ts) against hops simulated in
// memory with real handshakes (docs/PROTOCOL.md §5.1, §5.2, §5.4): the actions of a whole
// build, every event in every state, every DESTROY reason and ERROR code with the hop it
// blames, answers out of order, forged answers and timeouts; no socket, no timer.
import t from 'tap'
import { ChannelCommand } from '../../../src/onion/cells/channel-cell.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { HopError, decodeExtend, encodeError } from '../../../src/onion/cells/relay-msg.js'
import { ClientBuild, type BuildAction, type BuildHop } from '../../../src/onion/circuits/client-build.js'
import { HOP_ERRORS, hopErrorName } from '../../../src/onion/circuits/hop-error.js'
import { HopState } from '../../../src/onion/circuits/hop-state.js'
import { clientStart, relayRespond } from '../../../src/onion/handshake/oaep-x25519.js'
import { rsaFingerprint } from '../../../src/onion/crypto/primitives.js'
import { codeOf } from '../helpers.js'
import { identities, repad } from './chain.js'

const ids = identities(4)
const path: BuildHop[] = ids.map((id, i) => ({
  nickname: `hop${i + 1}`,
  role: i === ids.length - 1 ? 'server' : 'relay',
  fingerprint: rsaFingerprint(id.publicDer).toString('hex'),
  identityKey: Buffer.from(id.publicDer).toString('base64'),
  host: `127.0.0.${i + 1}`,
  port: 9001 + i,
}))

/** a CREATE for hop i's key that is not the build's: its CREATED cannot authenticate */
const otherCreate = (i: number): Buffer => clientStart({ identityKey: ids[i - 1].publicDer }).create

/** the hops of one circuit, answering what the build sends the way relays do */
class Hops {
  readonly states: HopState[] = []
  /** hop 1's CREATED; `forged`: for another handshake than the one sent */
  created (data: Buffer, forged = false): Buffer {
    const r = relayRespond({ identityPrivate: ids[0].privateDer, fingerprint: rsaFingerprint(ids[0].publicDer), create: repad(forged ? otherCreate(1) : data) })
    this.states.push(new HopState(r.keys))
    return repad(r.created)
  }

  /** runs a forward cell through the hops built; returns the layer the last one opened */
  forward (data: Buffer): { hop: number, cmd: RelayCommand, body: Buffer } {
    let cur = data
    for (let h = 1; h <= this.states.length; h++) {
      const layer = this.states[h - 1].peel(cur)
      if (layer.cmd !== RelayCommand.FORWARD) return { hop: h, cmd: layer.cmd, body: layer.body }
      cur = repad(layer.body)
    }
    throw new Error('FORWARD past the last hop')
  }

  /** answers an EXTEND as hop h does with hop h+1's CREATED (`forged`: for another handshake) */
  extended (data: Buffer, forged = false): Buffer {
    const got = this.forward(data)
    if (got.cmd !== RelayCommand.EXTEND || got.hop !== this.states.length) throw new Error(`EXTEND reached hop ${got.hop}`)
    const ext = decodeExtend(got.body)
    const next = ids[this.states.length]
    const r = relayRespond({ identityPrivate: next.privateDer, fingerprint: ext.fingerprint, create: repad(forged ? otherCreate(this.states.length + 1) : ext.create) })
    this.states.push(new HopState(r.keys))
    return this.backward(this.states.length - 1, RelayCommand.EXTENDED, r.created)
  }

  /** a backward cell originated at hop k */
  backward (k: number, cmd: RelayCommand, body: Buffer): Buffer {
    let cur = repad(this.states[k - 1].originate(cmd, body))
    for (let h = k - 1; h >= 1; h--) cur = repad(this.states[h - 1].wrapBackward(cur))
    return cur
  }
}

const data = (a: BuildAction): Buffer => {
  if (a.kind !== 'send') throw new Error(`expected send, got ${JSON.stringify(a)}`)
  return a.data
}

/** a build of `n` hops waiting for hop `at`'s answer (1: CREATED; 2..n: EXTENDED) */
function buildAt (at: number, n = 4): { b: ClientBuild, hops: Hops, sent: Buffer } {
  const b = new ClientBuild(path.slice(0, n))
  const hops = new Hops()
  let sent = data(b.start())
  if (at >= 2) sent = data(b.onCell(ChannelCommand.CREATED, hops.created(sent)))
  for (let i = 3; i <= at; i++) sent = data(b.onCell(ChannelCommand.RELAY, hops.extended(sent)))
  return { b, hops, sent }
}

const destroyCell = (reason: number) => repad(Buffer.from([reason]))
const failed = (hop: number, code: string, destroy = true) => ({ kind: 'failed', hop, code, destroy })

t.test('a whole build: CREATE, then one EXTEND per hop, each through the last hop built', async (t) => {
  for (const n of [1, 2, 4]) {
    const b = new ClientBuild(path.slice(0, n))
    const hops = new Hops()
    t.equal(b.state, 'new')
    const first = b.start()
    t.match(first, { kind: 'send', cmd: ChannelCommand.CREATE }, 'CREATE to hop 1')
    t.equal(b.state, 'creating')
    let a = b.onCell(ChannelCommand.CREATED, hops.created(data(first)))
    for (let i = 2; i <= n; i++) {
      t.match(a, { kind: 'send', cmd: ChannelCommand.RELAY }, `EXTEND for hop ${i}`)
      t.equal(b.state, 'extending')
      t.equal(b.hop, i)
      a = b.onCell(ChannelCommand.RELAY, hops.extended(data(a)))
    }
    t.same(a, { kind: 'done' }, `${n} hop(s) built`)
    t.equal(b.state, 'done')
    t.equal(b.onion.length, n, 'the onion holds one layer per hop')
    // the layers work: a DATA to the last hop opens there
    const to = hops.forward(b.onion.wrapForward(n, RelayCommand.DATA, Buffer.from('hi')))
    t.same([to.hop, to.cmd, to.body.toString()], [n, RelayCommand.DATA, 'hi'])
  }
  t.equal(codeOf(() => new ClientBuild([])), 'MM_ERR_CIRCUIT', 'a circuit needs a hop')
  const b = new ClientBuild(path)
  b.start()
  t.throws(() => b.start(), 'start() once')
})

t.test('the EXTEND names the next hop as listed', async (t) => {
  const { b, hops, sent } = buildAt(1)
  const ext = b.onCell(ChannelCommand.CREATED, hops.created(sent))
  const got = hops.forward(data(ext))
  t.equal(got.hop, 1, 'opened by hop 1')
  t.equal(got.cmd, RelayCommand.EXTEND)
  const e = decodeExtend(got.body)
  t.same([e.fingerprint.toString('hex'), e.host, e.port], [path[1].fingerprint, path[1].host, path[1].port])
})

t.test('CREATE answered with DESTROY: every reason, from the one table', async (t) => {
  const expected: Record<number, [string, boolean]> = {
    0: ['MM_ERR_CIRCUIT_BUILD', true],
    [HopError.NOT_LISTED]: ['MM_ERR_CIRCUIT_BUILD', true],
    [HopError.UNREACHABLE]: ['MM_ERR_CIRCUIT_BUILD', true],
    [HopError.HANDSHAKE]: ['MM_ERR_HOP_AUTH', true],
    [HopError.BUSY]: ['MM_ERR_CIRCUIT_BUILD', true],
    [HopError.PROTOCOL]: ['MM_ERR_CIRCUIT_BUILD', true],
    // someone else's circuit holds the id: never DESTROY it
    [HopError.IN_USE]: ['MM_ERR_CIRCUIT_ID_IN_USE', false],
    // a cell out of sequence (PROTOCOL §4): the one reason with its own client code
    [HopError.INTEGRITY]: ['MM_ERR_CIRCUIT_INTEGRITY', true],
    8: ['MM_ERR_CIRCUIT_BUILD', true],
    255: ['MM_ERR_CIRCUIT_BUILD', true],
  }
  for (const [reason, [code, destroy]] of Object.entries(expected)) {
    const { b } = buildAt(1)
    const a = b.onCell(ChannelCommand.DESTROY, destroyCell(Number(reason)))
    t.match(a, failed(1, code, destroy), `DESTROY(${hopErrorName(Number(reason))}) → ${code}`)
    t.equal(b.state, 'failed')
    if (a.kind === 'failed') t.match(a.message, /^hop 1 \(hop1 [0-9a-f]{8} at 127\.0\.0\.1:9001\) /, 'names the hop')
  }
  t.equal(hopErrorName(9), 'reason 9')
  t.equal(hopErrorName(0), 'reason 0')
})

t.test('EXTEND answered with ERROR: every code blames the hop being added', async (t) => {
  for (const at of [2, 3, 4]) {
    for (const code of [HopError.NOT_LISTED, HopError.UNREACHABLE, HopError.HANDSHAKE, HopError.BUSY, HopError.PROTOCOL, HopError.IN_USE, 99]) {
      const { b, hops } = buildAt(at)
      const a = b.onCell(ChannelCommand.RELAY, hops.backward(at - 1, RelayCommand.ERROR, encodeError({ code, reason: 'no way' })))
      const want = HOP_ERRORS[code as HopError]?.onExtend ?? 'MM_ERR_CIRCUIT_BUILD'
      t.match(a, failed(at, want), `hop ${at}: ERROR(${hopErrorName(code)}) → ${want}`)
      if (a.kind === 'failed') t.match(a.message, new RegExp(`^hop ${at} .* could not be reached from hop ${at - 1}: no way$`))
    }
  }
  t.equal(HOP_ERRORS[HopError.NOT_LISTED].onExtend, 'MM_ERR_NOT_LISTED')
  t.equal(HOP_ERRORS[HopError.HANDSHAKE].onExtend, 'MM_ERR_HOP_AUTH')
  // a malformed ERROR body is still a refusal of the hop being added
  const { b, hops } = buildAt(3)
  t.match(b.onCell(ChannelCommand.RELAY, hops.backward(2, RelayCommand.ERROR, Buffer.from([1]))), failed(3, 'MM_ERR_CIRCUIT_BUILD'))
})

t.test('DESTROY while extending: torn down from somewhere on the path, no hop blamed, nothing to DESTROY back', async (t) => {
  for (const reason of [0, HopError.UNREACHABLE, HopError.HANDSHAKE, HopError.BUSY, HopError.PROTOCOL, HopError.IN_USE, 42]) {
    const { b } = buildAt(3)
    const a = b.onCell(ChannelCommand.DESTROY, destroyCell(reason))
    // a later hop's DESTROY comes back through hop 1: blaming hop 1 would let any relay make the client drop its guard
    t.match(a, { ...failed(0, 'MM_ERR_CIRCUIT_CLOSED', false), at: 3 }, `DESTROY(${hopErrorName(reason)})`)
    if (a.kind === 'failed') t.equal(a.message, `circuit torn down (${hopErrorName(reason)})`)
  }
})

t.test('answers out of order or from the wrong hop', async (t) => {
  // EXTENDED from hop 1 while hop 3 is being added (hop 2 must answer)
  const x = buildAt(3)
  t.match(x.b.onCell(ChannelCommand.RELAY, x.hops.backward(1, RelayCommand.EXTENDED, Buffer.alloc(64))), failed(1, 'MM_ERR_CIRCUIT_BUILD'), 'EXTENDED from an earlier hop: that hop (it sealed it) is blamed, not the one being added')
  // DATA (or DROP) where an EXTENDED is due
  for (const cmd of [RelayCommand.DATA, RelayCommand.DROP, RelayCommand.EXTEND]) {
    const y = buildAt(2)
    t.match(y.b.onCell(ChannelCommand.RELAY, y.hops.backward(1, cmd, Buffer.from('x'))), { ...failed(1, 'MM_ERR_CIRCUIT_BUILD'), at: 2 }, `${RelayCommand[cmd]} instead of EXTENDED: hop 1 sealed it`)
  }
  // a FORWARD from hop 1 is a layer still to peel: what is inside does not open at hop 2's position (§3)
  const w = buildAt(2)
  t.match(w.b.onCell(ChannelCommand.RELAY, w.hops.backward(1, RelayCommand.FORWARD, Buffer.from('x'))), { ...failed(0, 'MM_ERR_CIRCUIT_INTEGRITY'), at: 2 })
  // a CREATED while extending, an AUTH at any time, a RELAY before CREATED: not for the build
  const z = buildAt(2)
  t.same(z.b.onCell(ChannelCommand.CREATED, repad(Buffer.alloc(64))), { kind: 'wait' }, 'a CREATED while extending is ignored')
  t.same(z.b.onCell(ChannelCommand.AUTH, repad(Buffer.alloc(64))), { kind: 'wait' }, 'AUTH is not for a circuit')
  t.same(z.b.onCell(ChannelCommand.CREATE, repad(Buffer.alloc(64))), { kind: 'wait' }, 'CREATE is not for a client')
  const c = buildAt(1)
  t.same(c.b.onCell(ChannelCommand.RELAY, repad(Buffer.alloc(10))), { kind: 'wait' }, 'a RELAY before CREATED cannot open')
  t.same(c.b.onCell(ChannelCommand.AUTH, repad(Buffer.alloc(10))), { kind: 'wait' })
  t.equal(c.b.state, 'creating', 'and changes nothing')
  // a forged, corrupted or repeated backward cell ends the build: the positions no longer agree (§3, P6)
  const f = buildAt(3)
  const bad = Buffer.from(f.hops.extended(f.sent))
  bad[100] ^= 1
  t.match(f.b.onCell(ChannelCommand.RELAY, bad), { ...failed(0, 'MM_ERR_CIRCUIT_INTEGRITY'), at: 3 }, 'a flipped bit fails the build; any earlier hop may have flipped it: none is blamed')
  const r = buildAt(3)
  const good = r.hops.extended(r.sent)
  t.match(r.b.onCell(ChannelCommand.RELAY, good), { kind: 'send' }, 'the authentic EXTENDED goes on')
  t.match(r.b.onCell(ChannelCommand.RELAY, good), { ...failed(0, 'MM_ERR_CIRCUIT_INTEGRITY'), at: 4 }, 'its repeat fails the build')
  // DESTROY INTEGRITY from the path while extending
  const d = buildAt(2)
  t.match(d.b.onCell(ChannelCommand.DESTROY, repad(Buffer.from([HopError.INTEGRITY]))), failed(0, 'MM_ERR_CIRCUIT_INTEGRITY', false), 'a hop destroyed the circuit for a cell out of sequence')
})

t.test('an answer that does not prove the listed key fails authentication (P4)', async (t) => {
  const a = buildAt(1)
  t.match(a.b.onCell(ChannelCommand.CREATED, a.hops.created(a.sent, true)), failed(1, 'MM_ERR_HOP_AUTH'), 'CREATED for another handshake')
  for (const at of [2, 4]) {
    const x = buildAt(at)
    t.match(x.b.onCell(ChannelCommand.RELAY, x.hops.extended(x.sent, true)), failed(at, 'MM_ERR_HOP_AUTH'), `EXTENDED for another handshake at hop ${at}`)
  }
  const g = buildAt(1)
  t.match(g.b.onCell(ChannelCommand.CREATED, repad(Buffer.alloc(64))), failed(1, 'MM_ERR_HOP_AUTH'), 'a CREATED of zeros')
})

t.test('timeouts: CREATE unanswered blames hop 1; an unanswered EXTEND blames no hop (path-spec §7); after the end nothing is awaited', async (t) => {
  const c = buildAt(1)
  t.match(c.b.onTimeout(), { ...failed(1, 'MM_ERR_CIRCUIT_BUILD'), at: 1 }, 'CREATE unanswered')
  for (const at of [2, 3, 4]) {
    const x = buildAt(at)
    const a = x.b.onTimeout()
    // hop at-1 (or any earlier hop) may hold the EXTEND or the EXTENDED: a hostile guard
    // must not be able to make the client avoid the middle or exit it does not want
    t.match(a, { ...failed(0, 'MM_ERR_CIRCUIT_BUILD'), at }, `EXTEND to hop ${at} unanswered: no hop blamed`)
    if (a.kind === 'failed') t.match(a.message, new RegExp(`^hop ${at} .*no hop is blamed\\)$`))
  }
  const n = new ClientBuild(path)
  t.same(n.onTimeout(), { kind: 'wait' }, 'before start')
  t.same(n.onCell(ChannelCommand.CREATED, repad(Buffer.alloc(64))), { kind: 'wait' }, 'a cell before start')
})

t.test('after done or failed, every event is ignored', async (t) => {
  const d = buildAt(2, 2)
  t.same(d.b.onCell(ChannelCommand.RELAY, d.hops.extended(d.sent)), { kind: 'done' })
  const f = buildAt(2)
  f.b.onTimeout()
  for (const [b, state] of [[d.b, 'done'], [f.b, 'failed']] as const) {
    for (const cmd of [ChannelCommand.CREATED, ChannelCommand.RELAY, ChannelCommand.DESTROY, ChannelCommand.AUTH]) {
      t.same(b.onCell(cmd, destroyCell(HopError.BUSY)), { kind: 'wait' }, `${state}: ${ChannelCommand[cmd]}`)
    }
    t.same(b.onTimeout(), { kind: 'wait' }, `${state}: timeout`)
    t.equal(b.state, state)
  }
})

t.test('handshakes prepared ahead are used, and erased when the build ends early (P5)', async (t) => {
  const { b, hops, sent } = buildAt(1)
  b.prepareNext()
  const prepared = (b as any).prepared
  t.equal(prepared.hop, 2, 'hop 2 prepared while CREATED is on its way')
  b.prepareNext()
  t.equal((b as any).prepared, prepared, 'prepared once')
  const ext = b.onCell(ChannelCommand.CREATED, hops.created(sent))
  t.equal((b as any).pending, prepared.start, 'the EXTEND carries the prepared handshake')
  t.equal((b as any).prepared, null)
  b.prepareNext()
  const next = (b as any).prepared.start.state
  const pending = (b as any).pending.state
  b.abort()
  t.equal(b.state, 'failed')
  t.ok(next.eph.disposed && next.s.every((x: number) => x === 0), 'the prepared handshake is erased')
  t.ok(pending.eph.disposed && pending.s.every((x: number) => x === 0), 'so is the one in flight')
  t.same(b.onCell(ChannelCommand.RELAY, hops.extended(data(ext))), { kind: 'wait' }, 'a late answer is ignored')
  // a timeout erases them too
  const x = buildAt(3)
  x.b.prepareNext()
  const s = (x.b as any).prepared.start.state
  x.b.onTimeout()
  t.ok(s.eph.disposed && s.s.every((v: number) => v === 0), 'erased on failure')
  // at the last hop there is nothing to prepare
  const last = buildAt(4)
  last.b.prepareNext()
  t.equal((last.b as any).prepared, null)
})
