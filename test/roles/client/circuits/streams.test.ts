// The client's side of streams and strict order (src/roles/client/circuits/streams.ts and
// circuit.ts, docs/PROTOCOL.md §4, §6) over a recording channel, a one-hop "final hop"
// played with a real HopState, and a fake clock: a response whose pieces are out of
// sequence fails its request with MM_ERR_STREAM_SEQUENCE and a RESET (the circuit goes
// on), a backward cell that does not open at its position or a DESTROY INTEGRITY ends the
// circuit with MM_ERR_CIRCUIT_INTEGRITY, and nothing altered is ever resolved.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { BACKWARD_BODY } from '../../../../src/onion/cells/constants.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../../../src/onion/cells/channel-cell.js'
import { RelayCommand } from '../../../../src/onion/cells/layer.js'
import { DataFlag, HopError, decodeData, encodeData } from '../../../../src/onion/cells/relay-msg.js'
import { HopState } from '../../../../src/onion/circuits/hop-state.js'
import type { Descriptor } from '../../../../src/onion/directory/descriptor.js'
import { relayRespond } from '../../../../src/onion/handshake/oaep-x25519.js'
import { encodeResponse } from '../../../../src/onion/streams/envelope.js'
import { fragment } from '../../../../src/onion/streams/reassembly.js'
import type { Channel } from '../../../../src/roles/common/channel.js'
import { ChannelPool } from '../../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../../src/roles/client/circuits/circuit.js'
import { FakeClock } from '../../../helpers/fake-clock.js'
import { fixedIdentity } from '../../../onion/helpers.js'

class RecordingChannel extends EventEmitter {
  closed = false
  readonly sent: ChannelCell[] = []
  send (b: Buffer): void { this.sent.push(decodeChannelCell(b)) }
  close (code = 1000, reason = 'closed'): void {
    if (this.closed) return
    this.closed = true
    this.emit('close', code, reason)
  }

  deliver (circId: number, cmd: ChannelCommand, data: Buffer): void { this.emit('cell', decodeChannelCell(encodeChannelCell(circId, cmd, data))) }
}

const hop: Descriptor = {
  v: 1, role: 'server', nickname: 'final', host: '127.0.0.1', port: 9001,
  identityKey: fixedIdentity.publicDer.toString('base64'),
  fingerprint: fixedIdentity.fingerprint.toString('hex'),
  tlsCert: '', tlsFingerprint: '', published: 0, expires: 0, signature: '',
}

const settled = () => new Promise((resolve) => setImmediate(resolve))

async function setup () {
  const ch = new RecordingChannel()
  const clock = new FakeClock()
  const channels = new ChannelPool(undefined, async () => ch as unknown as Channel)
  const building = Circuit.build({ path: [hop], channels, timeoutMs: 10_000, clock })
  await settled()
  const create = ch.sent.find((c) => c.cmd === ChannelCommand.CREATE)!
  const r = relayRespond({ identityPrivate: fixedIdentity.privateDer, fingerprint: fixedIdentity.fingerprint, create: create.data })
  ch.deliver(create.circId, ChannelCommand.CREATED, r.created)
  const final = new HopState(r.keys)
  const c = await building
  let read = 0
  /** the DATA pieces the client sent since the last call, as the final hop peels them */
  const received = () => {
    const cells = ch.sent.filter((x) => x.cmd === ChannelCommand.RELAY).slice(read)
    read += cells.length
    return cells.map((x) => decodeData(final.peel(x.data).body))
  }
  /** backward cells carrying these DATA bodies, sealed now in this order */
  const seal = (bodies: Buffer[]) => bodies.map((b) => final.originate(RelayCommand.DATA, b))
  const deliver = (layers: Buffer[]) => { for (const l of layers) ch.deliver(create.circId, ChannelCommand.RELAY, l) }
  const response = (streamId: number, text: string) => fragment(streamId, encodeResponse({ status: 200, headers: {}, body: Buffer.from(text) }), BACKWARD_BODY)
  return { ch, clock, c, circId: create.circId, received, seal, deliver, response }
}

const big = (n: number) => 'r'.repeat(n)

t.test('a response in order resolves; pieces out of sequence fail only their request, with a RESET', async (t) => {
  const s = await setup()
  const ok = s.c.request({ method: 'GET', path: '/a', headers: {}, body: Buffer.alloc(0) })
  const [first] = s.received()
  s.deliver(s.seal(s.response(first.streamId, big(5000))))
  t.equal((await ok).body.toString(), big(5000), 'in order: the whole response')

  const bad = s.c.request({ method: 'GET', path: '/b', headers: {}, body: Buffer.alloc(0) }).then(() => null, (e) => e)
  const [second] = s.received()
  const pieces = s.response(second.streamId, big(5000))
  t.ok(pieces.length >= 3)
  // authentic cells in order, but the final hop's pieces skip one: a stream gap
  s.deliver(s.seal([pieces[0], pieces[2], pieces[1]]))
  t.match(await bad, { code: 'MM_ERR_STREAM_SEQUENCE' }, 'the request fails with the stream error')
  const reset = s.received()
  t.same(reset.map((m) => [m.streamId, m.flags]), [[second.streamId, DataFlag.RESET]], 'and the client resets the stream')
  t.notOk(s.c.closed, 'the circuit goes on')

  const again = s.c.request({ method: 'GET', path: '/c', headers: {}, body: Buffer.alloc(0) })
  const [third] = s.received()
  t.ok(third.streamId > second.streamId, 'stream ids increase')
  s.deliver(s.seal(s.response(third.streamId, 'fine')))
  t.equal((await again).body.toString(), 'fine')
})

t.test('a backward cell that does not open at its position ends the circuit: MM_ERR_CIRCUIT_INTEGRITY', async (t) => {
  for (const [name, order] of [['reordered', [1, 0, 2]], ['one dropped', [0, 2]], ['one repeated', [0, 0, 1, 2]]] as const) {
    const s = await setup()
    const p = s.c.request({ method: 'GET', path: '/x', headers: {}, body: Buffer.alloc(0) }).then(() => null, (e) => e)
    const [m] = s.received()
    const layers = s.seal(s.response(m.streamId, big(4000)))
    t.equal(layers.length, 3)
    s.deliver(order.map((i) => layers[i]))
    t.match(await p, { code: 'MM_ERR_CIRCUIT_INTEGRITY' }, `${name}: the request fails, nothing altered is resolved`)
    t.ok(s.c.closed, `${name}: the circuit is closed`)
    t.same(s.ch.sent.at(-1) && [s.ch.sent.at(-1)!.cmd, s.ch.sent.at(-1)!.circId], [ChannelCommand.DESTROY, s.circId], `${name}: and destroyed along its path`)
  }
})

t.test('DESTROY INTEGRITY from the path: MM_ERR_CIRCUIT_INTEGRITY; any other reason: MM_ERR_CIRCUIT_CLOSED', async (t) => {
  for (const [reason, code] of [[HopError.INTEGRITY, 'MM_ERR_CIRCUIT_INTEGRITY'], [HopError.UNREACHABLE, 'MM_ERR_CIRCUIT_CLOSED']] as const) {
    const s = await setup()
    const p = s.c.request({ method: 'GET', path: '/x', headers: {}, body: Buffer.alloc(0) }).then(() => null, (e) => e)
    s.ch.deliver(s.circId, ChannelCommand.DESTROY, Buffer.from([reason]))
    t.match(await p, { code }, `reason ${reason}`)
    t.ok(s.c.closed)
  }
})

t.test('a timed-out request drops its half-received response; late pieces change nothing', async (t) => {
  const s = await setup()
  const p = s.c.request({ method: 'GET', path: '/slow', headers: {}, body: Buffer.alloc(0) }, { timeoutMs: 1000 }).then(() => null, (e) => e)
  const [m] = s.received()
  const layers = s.seal(s.response(m.streamId, big(4000)))
  s.deliver([layers[0]])
  await s.clock.advance(1000)
  t.match(await p, { code: 'MM_ERR_TIMEOUT' })
  t.same(s.received().map((x) => [x.streamId, x.flags]), [[m.streamId, DataFlag.RESET]], 'RESET sent')
  s.deliver(layers.slice(1))
  t.notOk(s.c.closed, 'the late pieces open (in order) and are dropped')
  const next = s.c.request({ method: 'GET', path: '/next', headers: {}, body: Buffer.alloc(0) })
  const [n] = s.received()
  s.deliver(s.seal(s.response(n.streamId, 'next')))
  t.equal((await next).body.toString(), 'next')
  // a piece for a stream id nothing waits for, well formed, is dropped too
  s.deliver(s.seal([encodeData({ streamId: 999, flags: DataFlag.END, offset: 0, total: 1, data: Buffer.from('x') })]))
  t.notOk(s.c.closed)
})
