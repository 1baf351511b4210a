// P7, in-process: a relay extends a circuit only to a hop listed in the consensus, at
// the exact address listed for that fingerprint. EXTEND to 127.0.0.1:22, to the cloud
// metadata address, to an unlisted port of a listed relay's host, or to a listed
// fingerprint at another address is refused with ERROR(NOT_LISTED) from the extending
// hop, counted there, and the relay never even tries to open a channel to the target
// (its openChannel sees no call). How the client reports it (MM_ERR_NOT_LISTED, with no
// TCP connection reaching a decoy) is checked over real sockets in impostor.test.ts.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import { HOP_ERRORS } from '../../../src/onion/circuits/hop-error.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { BuildError, RawCircuit } from './raw-circuit.js'
import { inProcessNet, type InProcessRelay } from './harness.js'

t.test('EXTEND to anything not listed is refused without connecting', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const [d1, d2, d3] = net.relays.map((r) => r.d)
  const [r1, r2, r3] = net.relays
  const unlistedFp = randomBytes(32).toString('hex')
  const at = (d: Descriptor, o: Partial<Descriptor>): Descriptor => ({ ...d, ...o })
  const cases: { name: string, target: Descriptor }[] = [
    { name: 'an unlisted fingerprint at 127.0.0.1:22', target: at(d2, { fingerprint: unlistedFp, host: '127.0.0.1', port: 22 }) },
    { name: 'an unlisted fingerprint at 169.254.169.254:80', target: at(d2, { fingerprint: unlistedFp, host: '169.254.169.254', port: 80 }) },
    { name: 'an unlisted fingerprint at a listening loopback port', target: at(d2, { fingerprint: unlistedFp, host: '127.0.0.1', port: 8443 }) },
    { name: 'a listed relay\'s host at an unlisted port', target: at(d2, { port: 8444 }) },
    { name: 'a listed fingerprint at a listening loopback port', target: at(d2, { host: '127.0.0.1', port: 8443 }) },
    { name: 'a listed fingerprint at another listed relay\'s address', target: at(d2, { host: d3.host, port: d3.port }) },
    { name: 'the final hop\'s fingerprint at 169.254.169.254:80', target: at(net.final.d, { host: '169.254.169.254', port: 80 }) },
  ]

  const refused = async (t: Test, path: Descriptor[], extender: InProcessRelay): Promise<void> => {
    const before = extender.core.counters.extendsRefused
    const err = await RawCircuit.build(net, path).then(() => null, (e) => e)
    t.type(err, BuildError)
    t.equal(err?.hop, path.length, 'the refused hop is the one being added')
    t.same([err?.error?.hop, err?.error?.code], [path.length - 1, HopError.NOT_LISTED], 'ERROR(NOT_LISTED) from the extending hop')
    t.equal(err?.error?.reason, `${path[path.length - 1].host}:${path[path.length - 1].port} is not a hop listed in the consensus`)
    t.equal(extender.core.counters.extendsRefused, before + 1, 'the extending relay counted the refusal')
  }

  for (const c of cases) {
    await t.test(`from the entry: ${c.name}`, (t) => refused(t, [d1, c.target], r1))
  }
  for (const c of cases.slice(0, 4)) {
    await t.test(`from the middle: ${c.name}`, (t) => refused(t, [d1, d2, c.target], r2))
  }

  t.same(r1.opened.map((d) => d.fingerprint), [d2.fingerprint], 'the entry opened a channel only to the listed middle relay')
  t.same(r2.opened, [], 'the middle relay opened no channel')
  t.equal(r3.core.channelCount, 0, 'no relay opened a channel to the relay whose address was borrowed')
  t.equal(net.final.peers.length, 0, 'nothing connected to the final hop')
  t.equal(HOP_ERRORS[HopError.NOT_LISTED].onExtend, 'MM_ERR_NOT_LISTED', 'which a client reports as MM_ERR_NOT_LISTED')

  // the relays still extend to listed hops
  const ok = await RawCircuit.build(net, [d1, d2, d3, net.final.d])
  t.equal(await ok.echo('listed'), 'listed', 'a circuit through listed hops works')
  t.equal(r2.core.counters.extendsRefused, 4)
  t.equal(r3.core.counters.extendsRefused, 0)
})
