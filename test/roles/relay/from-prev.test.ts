// Cells from the previous hop at a relay, in-process over memory channels (P9): every
// malformed frame closes THAT channel with 1008 and a reason, malformed or out-of-place
// cells are answered per protocol (DESTROY) and the channel keeps serving; a circuit on
// another channel keeps working throughout. The per-address CREATE rate (3/s, burst 90)
// is exact under the fake clock. The 1009 frame-size limits are the WebSocket's own
// (malformed.test.ts, real processes).
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { ChannelCommand } from '../../../src/onion/cells/channel-cell.js'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import type { MemoryChannel } from '../../helpers/memory-channel.js'
import { settle, until } from '../../helpers/fake-clock.js'
import { RawCircuit, createCell } from './raw-circuit.js'
import { inProcessNet, rawChannel } from './harness.js'

/** a frame with this header and random bytes after `data` */
const frame = (circId: number, cmd: number, data = Buffer.alloc(0)): Buffer => {
  const b = Buffer.concat([Buffer.alloc(5), data, randomBytes(CELL_SIZE)]).subarray(0, CELL_SIZE)
  b.writeUInt32BE(circId, 0)
  b[4] = cmd
  return b
}

const closeOf = (ch: MemoryChannel): Promise<[number, string]> => new Promise((resolve) => ch.once('close', (code, reason) => resolve([code, reason])))

t.test('malformed input on a channel to a relay', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'])
  const [d1, d2] = net.relays.map((r) => r.d)
  const circuit = await RawCircuit.build(net, [d1, d2, net.final.d], { from: '127.0.0.78' })
  let n = 0
  const stillWorks = async (t: Test, what: string): Promise<void> => {
    const body = `ping ${++n}`
    t.equal(await circuit.echo(body), body, `the circuit on another channel still works after ${what}`)
  }

  const closes: { name: string, send: (ch: MemoryChannel) => void | Promise<void>, reason: RegExp }[] = [
    { name: 'a text frame', send: (ch) => ch.sendFrame(Buffer.from('x'.repeat(CELL_SIZE)), false), reason: /^text frame on a cell channel$/ },
    { name: 'a 2047-byte frame', send: (ch) => ch.sendFrame(randomBytes(CELL_SIZE - 1)), reason: /^frame of 2047 bytes; cells are 2048$/ },
    { name: 'a 2049-byte frame', send: (ch) => ch.sendFrame(randomBytes(CELL_SIZE + 1)), reason: /^frame of 2049 bytes; cells are 2048$/ },
    { name: 'an empty frame', send: (ch) => ch.sendFrame(Buffer.alloc(0)), reason: /^frame of 0 bytes/ },
    { name: 'circuit id 0', send: (ch) => ch.sendFrame(frame(0, ChannelCommand.CREATE)), reason: /^MM_ERR_CIRC_ID$/ },
    { name: 'channel command 0', send: (ch) => ch.sendFrame(frame(7, 0)), reason: /^MM_ERR_CHANNEL_CMD$/ },
    { name: 'channel command 9', send: (ch) => ch.sendFrame(frame(7, 9)), reason: /^MM_ERR_CHANNEL_CMD$/ },
    { name: 'CREATED sent towards the relay', send: (ch) => ch.sendFrame(frame(7, ChannelCommand.CREATED)), reason: /^channel command 2 is not valid towards the responder$/ },
    { name: 'AUTH from a client to a relay that proves nothing', send: (ch) => ch.sendFrame(frame(1, ChannelCommand.AUTH)), reason: /^AUTH refused: MM_ERR_/ },
    {
      name: 'CREATE reusing a live circuit id',
      send: async (ch) => {
        ch.send(createCell(d1, 7))
        await settle()
        ch.send(createCell(d1, 7))
      },
      reason: /^CREATE reuses a live circuit id$/,
    },
  ]
  for (const c of closes) {
    await t.test(`channel closed on ${c.name}`, async (t) => {
      const { ch } = rawChannel(net, d1)
      const closed = closeOf(ch)
      await c.send(ch)
      const [code, reason] = await closed
      t.equal(code, 1008, 'closed with 1008 (policy)')
      t.match(reason, c.reason, `with its reason (${reason})`)
      t.ok(ch.closed)
      await stillWorks(t, c.name)
    })
  }

  const answers: { name: string, send: Buffer, want: [number, number] | null }[] = [
    { name: 'RELAY on an unknown circuit', send: frame(11, ChannelCommand.RELAY), want: [ChannelCommand.DESTROY, HopError.PROTOCOL] },
    { name: 'a truncated CREATE (RSA block cut short)', send: frame(12, ChannelCommand.CREATE, Buffer.from([...randomBytes(32), 0x00, 0x40])), want: [ChannelCommand.DESTROY, HopError.HANDSHAKE] },
    { name: 'a CREATE whose RSA block overruns the cell', send: frame(13, ChannelCommand.CREATE, Buffer.from([...randomBytes(32), 0xff, 0xff])), want: [ChannelCommand.DESTROY, HopError.HANDSHAKE] },
    { name: 'a CREATE sealed to no key', send: frame(14, ChannelCommand.CREATE, Buffer.from([...randomBytes(32), 0x01, 0x00, ...randomBytes(256)])), want: [ChannelCommand.DESTROY, HopError.HANDSHAKE] },
    { name: 'DESTROY on an unknown circuit', send: frame(15, ChannelCommand.DESTROY), want: null },
  ]
  for (const a of answers) {
    await t.test(`answered per protocol: ${a.name}`, async (t) => {
      const { ch, cells } = rawChannel(net, d1)
      t.teardown(() => ch.close(1000, 'test done'))
      ch.sendFrame(a.send)
      await settle()
      t.notOk(ch.closed, 'the channel stays open')
      if (a.want) {
        t.equal(cells.length, 1, 'one answer')
        t.same([cells[0].circId, cells[0].cmd, cells[0].data[0]], [a.send.readUInt32BE(0), ...a.want], `answered ${ChannelCommand[a.want[0]]}(${HopError[a.want[1]]})`)
      } else {
        t.equal(cells.length, 0, 'ignored')
      }
      // the same channel still completes a real handshake
      ch.send(createCell(d1, 99))
      t.ok(await until(() => cells.length === (a.want ? 2 : 1)))
      t.equal(cells[cells.length - 1].cmd, ChannelCommand.CREATED, 'and the channel still serves a real CREATE')
      await stillWorks(t, a.name)
    })
  }
  t.equal(net.relays[0].core.counters.cellsRejected, 4, 'each unknown-circuit RELAY and bad CREATE was counted as rejected')
})

t.test('per-address CREATE rate limit (3/s, burst 90)', async (t) => {
  const net = inProcessNet(t, ['127.0.0.12'])
  const [short] = net.relays
  const { ch, cells } = rawChannel(net, short.d, '127.0.0.77')
  for (let i = 1; i <= 200; i++) ch.send(createCell(short.d, i))
  t.ok(await until(() => cells.length >= 200), 'every CREATE was answered')
  const created = cells.filter((c) => c.cmd === ChannelCommand.CREATED).length
  const busy = cells.filter((c) => c.cmd === ChannelCommand.DESTROY && c.data[0] === HopError.BUSY).length
  t.equal(created + busy, 200, 'each CREATE got CREATED or DESTROY(BUSY)')
  t.equal(created, 90, 'exactly the burst was served (no time passed)')
  t.equal(busy, 110, 'the excess was refused')
  t.equal(short.core.counters.handshakesRefused, busy, 'the refusals are counted')
  t.notOk(ch.closed, 'the flooding channel stays open')

  // a second later: three more tokens, and not a fourth
  await net.clock.advance(1000)
  for (let i = 201; i <= 204; i++) ch.send(createCell(short.d, i))
  t.ok(await until(() => cells.length >= 204))
  // (a refusal is sent at once, a CREATED after the handshake: compare by circuit id)
  t.same(cells.slice(200).sort((x, y) => x.circId - y.circId).map((c) => [c.circId, c.cmd]), [[201, ChannelCommand.CREATED], [202, ChannelCommand.CREATED], [203, ChannelCommand.CREATED], [204, ChannelCommand.DESTROY]], '3/s refill')

  // another channel from the same address shares the bucket; another address does not
  const same = rawChannel(net, short.d, '127.0.0.77')
  same.ch.send(createCell(short.d, 1))
  t.ok(await until(() => same.cells.length === 1))
  t.same([same.cells[0].cmd, same.cells[0].data[0]], [ChannelCommand.DESTROY, HopError.BUSY], 'the limit is per address, not per channel')
  const c = await RawCircuit.build(net, [short.d, net.final.d], { from: '127.0.0.78' })
  t.equal(await c.echo('still served'), 'still served', 'another address is still served')
  ch.close(1000, 'done')
  await net.clock.advance(3000)
  t.equal(await short.sessions.size(), 2, 'the circuits of a closed channel are gone after the reattach grace (left: the other address\'s hop record and its back pointer)')
})
