// P7: a relay extends a circuit only to a hop listed in the signed consensus, at
// the exact address listed for that fingerprint. EXTEND to 127.0.0.1:22, to the
// cloud metadata address, to an unlisted port of a listed relay's host, or to a
// listed fingerprint at another address is refused with ERROR(NOT_LISTED), which
// the client reports as MM_ERR_NOT_LISTED for that hop; and the relay never opens
// a connection to the target (decoy TCP listeners count connections).
import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Circuit, CircuitError, ChannelPool } from '../../../src/roles/client/circuit.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { healthz, metrics, sleep, startNet } from './fixture.js'

const CLIENT_IP = '127.0.0.77'

async function decoy (t: Test, host: string): Promise<{ port: number, connections: () => number }> {
  let n = 0
  const s: Server = createServer((sock) => { n++; sock.destroy() })
  await new Promise<void>((resolve) => s.listen(0, host, resolve))
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())))
  return { port: (s.address() as { port: number }).port, connections: () => n }
}

t.test('EXTEND to anything not listed is refused without connecting', async (t) => {
  const net = await startNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const [d1, d2, d3] = net.descs
  const [r1, r2, r3] = net.relays
  const anyLoopback = await decoy(t, '127.0.0.1')
  const r2HostOtherPort = await decoy(t, d2.host)
  const links = new ChannelPool(CLIENT_IP)
  t.teardown(() => links.close())

  // a hop the client asks for: the identity key stays a real one (the CREATE must be well formed)
  const unlistedFp = randomBytes(32).toString('hex')
  const at = (d: Descriptor, o: Partial<Descriptor>): Descriptor => ({ ...d, ...o })
  const cases: { name: string, target: Descriptor }[] = [
    { name: 'an unlisted fingerprint at 127.0.0.1:22', target: at(d2, { fingerprint: unlistedFp, host: '127.0.0.1', port: 22 }) },
    { name: 'an unlisted fingerprint at 169.254.169.254:80', target: at(d2, { fingerprint: unlistedFp, host: '169.254.169.254', port: 80 }) },
    { name: 'an unlisted fingerprint at a listening loopback port', target: at(d2, { fingerprint: unlistedFp, host: '127.0.0.1', port: anyLoopback.port }) },
    { name: 'a listed relay\'s host at an unlisted port', target: at(d2, { port: r2HostOtherPort.port }) },
    { name: 'a listed fingerprint at a listening loopback port', target: at(d2, { host: '127.0.0.1', port: anyLoopback.port }) },
    { name: 'a listed fingerprint at another listed relay\'s address', target: at(d2, { host: d3.host, port: d3.port }) },
    { name: 'the final hop\'s fingerprint at 169.254.169.254:80', target: at(net.final.descriptor, { host: '169.254.169.254', port: 80 }) },
  ]

  const refused = async (t: Test, path: Descriptor[], extender: { host: string, port: number }): Promise<void> => {
    const before = (await metrics(extender)).extendsRefused
    const target = path[path.length - 1]
    const err = await Circuit.build({ path, links, timeoutMs: 5000 }).then((c) => { c.destroy(); return null }, (e) => e)
    t.type(err, CircuitError)
    t.equal(err?.code, 'MM_ERR_NOT_LISTED')
    t.equal(err?.hop, path.length, 'the refused hop is the one being added')
    t.match(err?.message, target.fingerprint.slice(0, 8), 'the error names the hop')
    t.equal((await metrics(extender)).extendsRefused, before + 1, 'the extending relay counted the refusal')
  }

  for (const c of cases) {
    await t.test(`from the entry: ${c.name}`, (t) => refused(t, [d1, c.target], r1))
  }
  for (const c of cases.slice(0, 4)) {
    await t.test(`from the middle: ${c.name}`, (t) => refused(t, [d1, d2, c.target], r2))
  }

  await sleep(300)
  t.equal(anyLoopback.connections(), 0, 'no connection reached 127.0.0.1')
  t.equal(r2HostOtherPort.connections(), 0, 'no connection reached the unlisted port')
  t.equal((await healthz(r3)).channels, 0, 'no relay opened a channel to the relay whose address was borrowed')
  t.equal(net.final.peers.length, 0, 'nothing connected to the final hop')

  // the relays still extend to listed hops
  const ok = await Circuit.build({ path: [d1, d2, d3, net.final.descriptor], links })
  const r = await ok.request({ method: 'POST', path: '/ok', headers: {}, body: Buffer.from('listed') })
  t.equal(r.body.toString(), 'listed', 'a circuit through listed hops works')
  ok.destroy()
  t.equal((await metrics(r2)).extendsRefused, 4)
})
