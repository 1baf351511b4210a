// The circuit manager's copy of the consensus: when it lists too few usable relays
// for a circuit (it predates relays that joined since), the client fetches a fresh
// one instead of failing every request until the copy expires (an hour later).
// Relays read a consensus file the test network signs (test/roles/relay/fixture.ts),
// the final hop is an in-process echo.
import t from 'tap'
import { CircuitManager } from '../../../src/roles/client/circuit-manager.js'
import { Guards, memoryGuardStore } from '../../../src/roles/client/circuits/guards.js'
import { silentLogger } from '../../../src/log.js'
import { startNet } from '../relay/fixture.js'

t.test('a consensus with too few relays is refreshed, not kept until it expires', async (t) => {
  const net = await startNet(t, ['127.0.0.21', '127.0.0.22', '127.0.0.23'], { finalHost: '127.0.0.1' })
  const { relays, descs: descriptors } = net
  // publish resolves once every relay serves the new document
  await net.publish(descriptors.slice(0, 2))
  const cm = new CircuitManager({
    network: { relays: [`https://127.0.0.21:${relays[0].port}`], directoryKey: net.directoryKey },
    guards: new Guards({ store: memoryGuardStore() }),
    log: silentLogger,
  })
  t.teardown(() => cm.close())
  const req = { method: 'GET', path: '/ping', headers: {}, body: Buffer.from('ping') }
  await t.rejects(cm.request(req, { retries: 0 }), { code: 'MM_ERR_TOO_FEW_RELAYS' }, 'two relays cannot make a circuit')

  // a third relay joins
  await net.publish(descriptors)
  const res = await cm.request(req, { retries: 0 })
  t.equal(res.status, 200, 'the client fetched the new consensus and built a circuit')
  t.equal(res.body.toString(), 'ping')
  t.equal(cm.describe().length, 4)
})
