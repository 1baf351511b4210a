// The circuit manager's copy of the consensus: when it lists too few usable relays
// for a circuit (it predates relays that joined since), the client fetches a fresh
// one instead of failing every request until the copy expires (an hour later).
// Relays read a consensus file we sign, the final hop is an in-process echo.
import t from 'tap'
import { CircuitManager } from '../../../src/roles/client/circuit-manager.js'
import { Guards, memoryGuardStore } from '../../../src/roles/client/circuits/guards.js'
import { silentLogger } from '../../../src/log.js'
import { directoryKey, httpsGetJson, startEchoHop, startRelayProc, tmp, writeConsensus, type RelayProc } from '../../helpers/net.js'
import { join } from 'node:path'

t.test('a consensus with too few relays is refreshed, not kept until it expires', async (t) => {
  const dk = directoryKey()
  const file = join(tmp('mm-cons-'), 'consensus.json')
  const echo = await startEchoHop('127.0.0.1')
  t.teardown(() => echo.close())
  writeConsensus(file, dk, [], echo.descriptor)
  const relays: RelayProc[] = []
  t.teardown(() => Promise.all(relays.map((r) => r.kill('SIGKILL'))))
  for (const host of ['127.0.0.21', '127.0.0.22', '127.0.0.23']) relays.push(await startRelayProc({ host, consensus: file, dirKey: dk.fingerprint }))
  const descriptors = await Promise.all(relays.map((r) => r.descriptor()))
  const served = async (n: number) => {
    for (let i = 0; i < 100; i++) {
      const counts = await Promise.all(relays.map(async (r) => ((await httpsGetJson(`https://${r.host}:${r.port}/consensus`)) as any)?.relays?.length))
      if (counts.every((c) => c === n)) return
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`relays never served a consensus with ${n} relays`)
  }

  writeConsensus(file, dk, descriptors.slice(0, 2), echo.descriptor)
  await served(2)
  const cm = new CircuitManager({
    network: { relays: [`https://127.0.0.21:${relays[0].port}`], directoryKey: dk.fingerprint },
    guards: new Guards({ store: memoryGuardStore() }),
    log: silentLogger,
  })
  t.teardown(() => cm.close())
  const req = { method: 'GET', path: '/ping', headers: {}, body: Buffer.from('ping') }
  await t.rejects(cm.request(req, { retries: 0 }), { code: 'MM_ERR_TOO_FEW_RELAYS' }, 'two relays cannot make a circuit')

  // a third relay joins
  writeConsensus(file, dk, descriptors, echo.descriptor)
  await served(3)
  const res = await cm.request(req, { retries: 0 })
  t.equal(res.status, 200, 'the client fetched the new consensus and built a circuit')
  t.equal(res.body.toString(), 'ping')
  t.equal(cm.describe().length, 4)
})
