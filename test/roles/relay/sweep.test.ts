// Circuits that expire or are evicted leave the session store without a DESTROY;
// the relay must also drop its local routing entries for them, or a long-lived
// channel accumulates them without bound. With a 2 s circuit TTL and a 1 s sweep,
// 20 idle circuits on open channels are forgotten entirely.
import t from 'tap'
import { join } from 'node:path'
import { Circuit, ChannelPool } from '../../../src/roles/client/circuit.js'
import { directoryKey, httpsGetJson, startEchoHop, startRelayProc, tmp, writeConsensus } from '../../helpers/net.js'

const metrics = async (host: string, port: number) => await httpsGetJson(`https://${host}:${port}/metrics`) as { circuits: number, tracked: number, channels: number }

t.test('expired circuits leave no local routing state behind', async (t) => {
  const dir = tmp()
  const key = directoryKey()
  const consensus = join(dir, 'consensus.json')
  const relay = await startRelayProc({ host: '127.0.0.51', consensus, dirKey: key.fingerprint, extra: ['--circuit-ttl', '2', '--sweep-interval', '1'] })
  t.teardown(() => relay.kill())
  const echo = await startEchoHop('127.0.0.52')
  t.teardown(echo.close)
  writeConsensus(consensus, key, [await relay.descriptor()], echo.descriptor)
  await new Promise((r) => setTimeout(r, 1500))

  const links = new ChannelPool('127.0.0.53')
  t.teardown(() => links.close())
  const built: Circuit[] = []
  for (let i = 0; i < 20; i++) built.push(await Circuit.build({ path: [await relay.descriptor(), echo.descriptor], links }))
  const busy = await metrics(relay.host, relay.port)
  t.equal(busy.tracked, 40, '20 inbound circuits and 20 outbound ids are routed locally')
  t.ok(busy.channels >= 2, 'the client channel and the channel to the final hop are open')

  await new Promise((r) => setTimeout(r, 4500))
  const idle = await metrics(relay.host, relay.port)
  t.equal(idle.circuits, 0, 'the store expired every circuit')
  t.equal(idle.tracked, 0, 'and the relay forgot their routing entries')
  t.ok(idle.channels >= 2, 'while the channels themselves stay open')
})
