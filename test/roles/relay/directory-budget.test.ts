// A relay as directory cache (PROTOCOL §7.3) meters consensus requests per client address:
// one cell asking costs it tens of cells answering, so an address past its burst gets
// 429 MM_ERR_DIR_RATE while other addresses are still served, and the budget refills with
// (fake) time. Real RelayCore over memory channels (harness.ts), the client's own Circuit.
import t from 'tap'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { DIRECTORY_PATH } from '../../../src/onion/circuits/directory-cache.js'
import { DIRECTORY_REQUESTS } from '../../../src/roles/relay/relay-context.js'
import { InProcessNet } from './harness.js'

t.test('an address past its directory budget is refused; another is served; time refills it', async (t) => {
  const net = new InProcessNet()
  const relay = net.addRelay('127.0.0.41', { name: 'dircache' })
  net.addFinal()
  net.raw = JSON.stringify({ v: 2, relays: Array.from({ length: 30 }, (_, i) => ({ nickname: `r${i}`, pad: 'x'.repeat(300) })) })
  t.teardown(() => net.close())
  const oneHop = async (from: string) => {
    const channels = new ChannelPool(from, async (d) => net.open(d, { from }))
    t.teardown(() => channels.close())
    return await Circuit.build({ path: [relay.d], channels, clock: net.clock })
  }
  const ask = async (c: Circuit) => {
    const res = await c.request({ method: 'GET', path: DIRECTORY_PATH, headers: {}, body: Buffer.alloc(0) })
    return res.status === 200 ? 200 : [res.status, JSON.parse(res.body.toString()).error.code]
  }
  const flood = await oneHop('127.0.0.90')
  const answers = []
  for (let i = 0; i < DIRECTORY_REQUESTS.burst + 3; i++) answers.push(await ask(flood))
  t.same(answers.slice(0, DIRECTORY_REQUESTS.burst), Array(DIRECTORY_REQUESTS.burst).fill(200), 'the burst is served')
  t.same(answers.slice(DIRECTORY_REQUESTS.burst), Array(3).fill([429, 'MM_ERR_DIR_RATE']), 'then refused')
  const fresh = await oneHop('127.0.0.90')
  t.same(await ask(fresh), [429, 'MM_ERR_DIR_RATE'], 'a new circuit from the same address does not reset it')
  t.equal(await ask(await oneHop('127.0.0.91')), 200, 'another address is served meanwhile')
  await net.clock.advance(Math.ceil(1000 / DIRECTORY_REQUESTS.perSecond))
  t.equal(await ask(flood), 200, 'the budget refills with time')
})
