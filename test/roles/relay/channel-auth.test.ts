// Relay links are mutually authenticated (docs/PROTOCOL.md §2.3): a relay opening a
// channel to another relay proves its listed identity with AUTH, and only such a
// channel is spared the per-address CREATE rate limit. Shown on relay processes: a real
// relay-to-relay channel is authenticated and its CREATEs are not limited; a client on
// the SAME address as a listed relay is limited (an address proves nothing); an AUTH
// captured on one connection and replayed on another, and an AUTH by a key the consensus
// does not list, close the channel with 1008.
import t, { type Test } from 'tap'
import { Circuit, ChannelPool } from '../../../src/roles/client/circuit.js'
import { connectChannel, type Channel } from '../../../src/roles/common/channel.js'
import { hopDescriptor, loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { ChannelCommand, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import { encodeAuth } from '../../../src/onion/handshake/channel-auth.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { tmp } from '../../helpers/net.js'
import { createCell, metrics, rawChannel, startNet, waitUntil } from './fixture.js'

/** resolves with the channel's close code and reason */
const closeOf = (ch: Channel): Promise<[number, string]> => new Promise((resolve) => ch.once('close', (code, reason) => resolve([code, reason])))

/** sends CREATEs 1..n on `ch` and counts CREATED / DESTROY(BUSY) among the answers */
async function flood (t: Test, ch: Channel, cells: { cmd: number, data: Buffer }[], d: Descriptor, n: number): Promise<{ created: number, busy: number }> {
  const before = cells.length
  for (let i = 1; i <= n; i++) ch.send(createCell(d, i))
  t.ok(await waitUntil(() => cells.length >= before + n, 20_000), `every one of ${n} CREATEs was answered`)
  const answers = cells.slice(before)
  return {
    created: answers.filter((c) => c.cmd === ChannelCommand.CREATED).length,
    busy: answers.filter((c) => c.cmd === ChannelCommand.DESTROY && c.data[0] === HopError.BUSY).length,
  }
}

t.test('relay link authentication', async (t) => {
  // `limited` serves 1 handshake/s, burst 3, per address: anything not exempt runs dry at once
  const net = await startNet(t, ['127.0.0.11', '127.0.0.12'], {
    extra: (i) => (i === 0 ? ['--create-rate', '100000', '--create-burst', '100000'] : ['--create-rate', '1', '--create-burst', '3']),
  })
  const [entry, limited] = net.descs
  const limitedProc = net.relays[1]
  // the test also plays a listed relay itself (nobody connects to its port)
  const me = loadOrCreateIdentity(tmp('mm-listed-'), '127.0.0.31')
  await net.publish([...net.descs, hopDescriptor(me, { role: 'relay', nickname: 'tester', host: '127.0.0.31', port: 9, lifetimeMs: 3600_000 })])
  const myAuth = { identityPrivate: me.privateDer, fingerprint: me.fingerprint, responderFingerprint: Buffer.from(limited.fingerprint, 'hex') }
  const connect = (localAddress: string, auth?: typeof myAuth) => connectChannel({ host: limited.host, port: limited.port, tlsCert: limited.tlsCert, tlsFingerprint: limited.tlsFingerprint, localAddress, auth })

  const links = new ChannelPool('127.0.0.77')
  t.teardown(() => links.close())
  const buildMany = async (n: number): Promise<number> => {
    const built = await Promise.all(Array.from({ length: n }, () => Circuit.build({ path: [entry, limited, net.final.descriptor], links, timeoutMs: 5000 }).then((c) => { c.destroy(); return 1 }, () => 0)))
    return built.reduce<number>((a, b) => a + b, 0)
  }

  await t.test('a relay-to-relay channel is authenticated, and its CREATEs are not limited', async (t) => {
    const before = await metrics(limitedProc)
    t.equal(await buildMany(12), 12, '12 circuits extended from the entry relay through a relay allowing burst 3')
    const after = await metrics(limitedProc)
    t.equal(after.handshakesRefused - before.handshakesRefused, 0, 'none of the entry relay\'s CREATEs was refused')
    t.equal(after.channelsAuthenticated - before.channelsAuthenticated, 1, 'the entry relay\'s one channel proved its identity')
    t.equal(after.authRefused, 0)
  })

  await t.test('a client on a listed relay\'s own address is limited like any client', async (t) => {
    const { ch, cells } = await rawChannel(t, limited, entry.host)
    const { created, busy } = await flood(t, ch, cells, limited, 20)
    t.ok(created <= 6, `only the burst and little more were served (${created})`)
    t.ok(busy >= 14, `the rest was refused with BUSY (${busy}): ${entry.host} proves nothing`)
    t.notOk(ch.closed, 'a client channel without AUTH is simply a client channel')
    // the relay at that address, its address's bucket now empty, is still served by its proof
    t.equal(await buildMany(6), 6, 'circuits from the entry relay (same address) still extend')
  })

  await t.test('an AUTH replayed on another connection is refused', async (t) => {
    const first = await connect('127.0.0.33')
    t.teardown(() => first.close())
    const cells: { cmd: number, data: Buffer }[] = []
    first.on('cell', (c) => cells.push(c))
    const captured = encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ ...myAuth, exporter: first.keyingMaterial() }))
    first.send(Buffer.from(captured))
    const { created, busy } = await flood(t, first, cells, limited, 10)
    t.same([created, busy], [10, 0], 'on its own connection it proves a listed relay: 10 CREATEs, none refused')
    t.notOk(first.closed)

    const second = await connect('127.0.0.34')
    const closed = closeOf(second)
    second.send(captured)
    const [code, reason] = await closed
    t.equal(code, 1008, 'the replay closes the channel')
    t.equal(reason, 'AUTH refused: MM_ERR_AUTH_SIGNATURE', 'it does not verify against this connection\'s exporter')
    t.equal((await metrics(limitedProc)).authRefused, 1, 'the refusal is counted')

    // even from the address that proved itself a moment ago
    const third = await connect('127.0.0.33')
    const closed3 = closeOf(third)
    third.send(captured)
    t.equal((await closed3)[0], 1008, 'a replay from the same address is refused too')
    t.notOk(first.closed, 'the original channel is unaffected')
  })

  await t.test('an AUTH by a key the consensus does not list is refused', async (t) => {
    const stranger = loadOrCreateIdentity(tmp('mm-stranger-'), '127.0.0.32')
    const ch = await connect('127.0.0.32', { ...myAuth, identityPrivate: stranger.privateDer, fingerprint: stranger.fingerprint })
    const [code, reason] = await closeOf(ch)
    t.same([code, reason], [1008, 'AUTH refused: MM_ERR_AUTH_UNLISTED'])
    // the same path with the listed identity is accepted: the refusal is the key's
    const before = (await metrics(limitedProc)).channelsAuthenticated
    const ok = await connect('127.0.0.35', myAuth)
    t.teardown(() => ok.close())
    const cells: { cmd: number, data: Buffer }[] = []
    ok.on('cell', (c) => cells.push(c))
    const { busy } = await flood(t, ok, cells, limited, 8)
    t.equal(busy, 0, 'the listed identity, its AUTH sent by connectChannel itself, is exempt')
    t.equal((await metrics(limitedProc)).channelsAuthenticated - before, 1, 'and counted as authenticated')
  })
})
