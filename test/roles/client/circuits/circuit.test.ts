// The circuit's I/O shell (src/roles/client/circuits/circuit.ts) in process: a channel
// that records what the client sends, a one-hop relay answering with real handshakes,
// and a fake clock, so the build timeout, the request timeout and a channel closing
// under a build are checked without a socket or a sleep.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../../../src/onion/cells/channel-cell.js'
import { RelayCommand } from '../../../../src/onion/cells/layer.js'
import { DataFlag, decodeData } from '../../../../src/onion/cells/relay-msg.js'
import { HopState } from '../../../../src/onion/circuits/hop-state.js'
import type { Descriptor } from '../../../../src/onion/directory/descriptor.js'
import { relayRespond } from '../../../../src/onion/handshake/oaep-x25519.js'
import type { Channel } from '../../../../src/roles/common/channel.js'
import { ChannelPool } from '../../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../../src/roles/client/circuits/circuit.js'
import { CircuitError } from '../../../../src/roles/client/circuits/circuit-error.js'
import { FakeClock } from '../../../helpers/fake-clock.js'
import { fixedIdentity } from '../../../onion/helpers.js'

/** the client's end of a channel: what it sends is recorded; `deliver` plays the relay */
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
  v: 1, role: 'relay', nickname: 'one', host: '127.0.0.1', port: 9001,
  identityKey: fixedIdentity.publicDer.toString('base64'),
  fingerprint: fixedIdentity.fingerprint.toString('hex'),
  tlsCert: '', tlsFingerprint: '', published: 0, expires: 0, signature: '',
}

function setup () {
  const ch = new RecordingChannel()
  const clock = new FakeClock()
  const channels = new ChannelPool(undefined, async () => ch as unknown as Channel)
  return { ch, clock, channels }
}

/** answers the CREATE the channel carried; returns the relay's state for the circuit */
function answerCreate (ch: RecordingChannel): HopState {
  const create = ch.sent.find((c) => c.cmd === ChannelCommand.CREATE)!
  const r = relayRespond({ identityPrivate: fixedIdentity.privateDer, fingerprint: fixedIdentity.fingerprint, create: create.data })
  ch.deliver(create.circId, ChannelCommand.CREATED, r.created)
  return new HopState(r.keys)
}

const settled = () => new Promise((resolve) => setImmediate(resolve))
/** `p` with its rejection observed now (the clock may settle it before the test awaits it) */
const observed = <T>(p: Promise<T>): Promise<T> => { p.catch(() => {}); return p }

t.test('an unanswered CREATE fails at the build timeout, hop 1 blamed, and the circuit is destroyed', async (t) => {
  const { ch, clock, channels } = setup()
  const building = observed(Circuit.build({ path: [hop], channels, timeoutMs: 10_000, clock }))
  await settled()
  t.same(ch.sent.map((c) => c.cmd), [ChannelCommand.CREATE])
  await clock.advance(9_999)
  t.equal(ch.sent.length, 1, 'still waiting just before the timeout')
  await clock.advance(1)
  const err = await building.catch((e) => e)
  t.ok(err instanceof CircuitError)
  t.match(err, { hop: 1, code: 'MM_ERR_CIRCUIT_BUILD' })
  t.match(err.message, /did not answer CREATE in time/)
  t.same(ch.sent.map((c) => [c.cmd, c.circId]), [[ChannelCommand.CREATE, ch.sent[0].circId], [ChannelCommand.DESTROY, ch.sent[0].circId]], 'DESTROY for the same circuit')
  t.equal(clock.pending, 0, 'no timer left behind')
})

t.test('a built circuit: a request without answer times out on the clock and its stream is reset', async (t) => {
  const { ch, clock, channels } = setup()
  const building = Circuit.build({ path: [hop], channels, timeoutMs: 10_000, clock })
  await settled()
  const relay = answerCreate(ch)
  const c = await building
  t.equal(c.onion.length, 1)
  t.equal(c.createdAt, clock.now(), 'created at the clock\'s time')
  const res = observed(c.request({ method: 'GET', path: '/ping', headers: {}, body: Buffer.from('ping') }, { timeoutMs: 5_000 }))
  t.equal(c.pendingRequests, 1)
  await clock.advance(5_000)
  await t.rejects(res, { code: 'MM_ERR_TIMEOUT', hop: 0 })
  t.equal(c.pendingRequests, 0)
  const data = ch.sent.filter((x) => x.cmd === ChannelCommand.RELAY).map((x) => relay.peel(x.data))
  t.ok(data.every((l) => l.cmd === RelayCommand.DATA), 'DATA to the final hop')
  const last = decodeData(data[data.length - 1].body)
  t.equal(last.flags, DataFlag.RESET, 'the timed-out stream is reset')
  t.equal(last.streamId, decodeData(data[0].body).streamId)
  c.destroy()
  t.ok(c.closed)
  await t.rejects(c.request({ method: 'GET', path: '/', headers: {}, body: Buffer.alloc(0) }), { code: 'MM_ERR_CIRCUIT_CLOSED' })
})

t.test('the channel closing under a build fails it at once, hop 1 blamed', async (t) => {
  const { ch, clock, channels } = setup()
  const building = Circuit.build({ path: [hop, { ...hop, nickname: 'two' }], channels, timeoutMs: 10_000, clock })
  await settled()
  ch.close(1006, 'gone')
  await t.rejects(building, { code: 'MM_ERR_CIRCUIT_CLOSED', hop: 1 })
  t.equal(clock.pending, 0, 'the step timer is cancelled')
  t.same(ch.sent.map((c) => c.cmd), [ChannelCommand.CREATE], 'no DESTROY on a closed channel')
})
