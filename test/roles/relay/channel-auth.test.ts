// Relay channels are mutually authenticated (docs/PROTOCOL.md §2.3), in-process over
// memory channels whose shared exporter stands in for TLS's: a relay opening a channel
// to another relay proves its listed identity with AUTH, and only such a channel is
// metered by the relay's (larger) CREATE budget instead of the per-address one. A real
// relay-to-relay channel is authenticated and its CREATEs are not refused at the address
// rate (its own budget, finite, is metering.test.ts's); a client on the SAME address as a
// listed relay is limited (an address proves nothing); an AUTH captured on one channel
// and replayed on another, and an AUTH by a key the consensus does not list, close the
// channel with 1008. AUTH over real TLS: test/roles/common/channel.test.ts.
import t, { type Test } from 'tap'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import { encodeAuth } from '../../../src/onion/handshake/channel-auth.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { hopDescriptor } from '../../../src/roles/common/identity.js'
import type { MemoryChannel } from '../../helpers/memory-channel.js'
import { until } from '../../helpers/fake-clock.js'
import { RawCircuit, createCell } from './raw-circuit.js'
import { identityFor, inProcessNet, rawChannel } from './harness.js'

const closeOf = (ch: MemoryChannel): Promise<[number, string]> => new Promise((resolve) => ch.once('close', (code, reason) => resolve([code, reason])))

/** sends n CREATEs (ids from `first`, default 1) on `ch` and counts CREATED / DESTROY(BUSY) among the answers */
async function flood (t: Test, ch: MemoryChannel, cells: ChannelCell[], d: Descriptor, n: number, first = 1): Promise<{ created: number, busy: number }> {
  const before = cells.length
  for (let i = first; i < first + n; i++) ch.send(createCell(d, i))
  t.ok(await until(() => cells.length >= before + n), `every one of ${n} CREATEs was answered`)
  const answers = cells.slice(before)
  return {
    created: answers.filter((c) => c.cmd === ChannelCommand.CREATED).length,
    busy: answers.filter((c) => c.cmd === ChannelCommand.DESTROY && c.data[0] === HopError.BUSY).length,
  }
}

t.test('relay channel authentication', async (t) => {
  // `limited` serves 1 handshake/s, burst 3, per address, and the clock does not move: anything not exempt runs dry at once
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'], { init: (i) => (i === 0 ? { createRate: 100000, createBurst: 100000 } : { createRate: 1, createBurst: 3 }) })
  const [entry, limited] = net.relays
  // the test also plays a listed relay itself (nobody connects to it)
  const me = identityFor('tester', '127.0.0.31')
  net.publish([...net.relays.map((r) => r.d), hopDescriptor(me, { role: 'relay', nickname: 'tester', host: '127.0.0.31', port: 9, lifetimeMs: 3600_000 })])
  const myAuth = { identityPrivate: me.privateDer, fingerprint: me.fingerprint, responderFingerprint: Buffer.from(limited.d.fingerprint, 'hex') }
  const cellsOf = (ch: MemoryChannel): ChannelCell[] => { const cells: ChannelCell[] = []; ch.on('cell', (c) => cells.push(c)); return cells }

  const buildMany = async (n: number): Promise<number> => {
    const built = await Promise.all(Array.from({ length: n }, () => RawCircuit.build(net, [entry.d, limited.d, net.final.d]).then(() => 1, () => 0)))
    return built.reduce<number>((a, b) => a + b, 0)
  }

  await t.test('a relay-to-relay channel is authenticated, and its CREATEs have the relay budget', async (t) => {
    const before = { ...limited.core.counters }
    t.equal(await buildMany(12), 12, '12 circuits extended from the entry relay through a relay allowing burst 3')
    const after = limited.core.counters
    t.equal(after.handshakesRefused - before.handshakesRefused, 0, 'none of the entry relay\'s CREATEs was refused')
    t.equal(after.channelsAuthenticated - before.channelsAuthenticated, 1, 'the entry relay\'s one channel proved its identity')
    t.equal(after.authRefused, 0)
  })

  await t.test('a client on a listed relay\'s own address is limited like any client', async (t) => {
    const { ch, cells } = rawChannel(net, limited.d, entry.d.host)
    const { created, busy } = await flood(t, ch, cells, limited.d, 20)
    t.equal(created, 3, `only the burst was served (${created})`)
    t.equal(busy, 17, `the rest was refused with BUSY (${busy}): ${entry.d.host} proves nothing`)
    t.notOk(ch.closed, 'a client channel without AUTH is simply a client channel')
    // the relay at that address, its address's bucket now empty, is still served by its proof
    t.equal(await buildMany(6), 6, 'circuits from the entry relay (same address) still extend')
  })

  await t.test('an AUTH replayed on another channel is refused', async (t) => {
    const first = net.open(limited.d, { from: '127.0.0.33' })
    const cells = cellsOf(first)
    const captured = encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ ...myAuth, exporter: first.keyingMaterial() }))
    first.send(Buffer.from(captured))
    const { created, busy } = await flood(t, first, cells, limited.d, 10)
    t.same([created, busy], [10, 0], 'on its own channel it proves a listed relay: 10 CREATEs, none refused')
    t.notOk(first.closed)

    const second = net.open(limited.d, { from: '127.0.0.34' })
    const closed = closeOf(second)
    second.send(captured)
    const [code, reason] = await closed
    t.equal(code, 1008, 'the replay closes the channel')
    t.equal(reason, 'AUTH refused: MM_ERR_AUTH_SIGNATURE', 'it does not verify against this channel\'s exporter')
    t.equal(limited.core.counters.authRefused, 1, 'the refusal is counted')

    // even from the address that proved itself a moment ago
    const third = net.open(limited.d, { from: '127.0.0.33' })
    const closed3 = closeOf(third)
    third.send(captured)
    t.equal((await closed3)[0], 1008, 'a replay from the same address is refused too')
    t.notOk(first.closed, 'the original channel is unaffected')
  })

  await t.test('an AUTH by a key the consensus does not list is refused', async (t) => {
    const stranger = identityFor('stranger', '127.0.0.32')
    const ch = net.open(limited.d, { from: '127.0.0.32', signer: { ...myAuth, identityPrivate: stranger.privateDer, fingerprint: stranger.fingerprint } })
    t.same(await closeOf(ch), [1008, 'AUTH refused: MM_ERR_AUTH_UNLISTED'])
    // the same path with the listed identity is accepted: the refusal is the key's
    const before = limited.core.counters.channelsAuthenticated
    const ok = net.open(limited.d, { from: '127.0.0.35', signer: myAuth })
    const { busy } = await flood(t, ok, cellsOf(ok), limited.d, 8)
    t.equal(busy, 0, 'the listed identity, its AUTH sent first by the opening side, is exempt')
    t.equal(limited.core.counters.channelsAuthenticated - before, 1, 'and counted as authenticated')
  })

  await t.test('a relay no longer listed loses the exemption', async (t) => {
    const ch = net.open(limited.d, { from: '127.0.0.36', signer: myAuth })
    const cells = cellsOf(ch)
    t.same(await flood(t, ch, cells, limited.d, 5), { created: 5, busy: 0 }, 'listed: exempt')
    net.publish(net.relays.map((r) => r.d))
    t.same(await flood(t, ch, cells, limited.d, 5, 100), { created: 3, busy: 2 }, 'no longer listed: its address\'s burst, like any client')
  })
})
