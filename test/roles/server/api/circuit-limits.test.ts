// Per-circuit budgets at the gateway (PROTOCOL §6.1): the server knows circuits, never
// addresses (P1), so a circuit is what it limits. One circuit over its request budget,
// its register/login budget, or with a second password request running, is answered
// 429 MM_ERR_CIRCUIT_RATE, while another circuit on the same gateway is served. The last
// test runs it through the real final hop over an in-process relay, so the circuit
// identity is the one the final hop gives the gateway, not one a test made up.
import t from 'tap'
import { silentLogger } from '../../../../src/log.js'
import { finalHopEndpoint } from '../../../../src/roles/common/final-hop-endpoint.js'
import { hopDescriptor } from '../../../../src/roles/common/identity.js'
import { InProcessNet, identityFor } from '../../relay/harness.js'
import { RawCircuit } from '../../relay/raw-circuit.js'
import { PASSWORD, clockedStack, drive, gw } from './helpers.js'

t.test('the request budget: a burst, then the rate; other circuits and the direct API unaffected', async (t) => {
  const s = await clockedStack(t, { circuitLimits: { requestBurst: 50, requestRate: 10 } })
  const ask = (circuit?: string) => gw(s.gateway, 'GET', '/v1/rooms/lobby/messages', { circuit })
  for (let i = 0; i < 50; i++) t.equal((await ask('busy')).status, 401, 'within the burst: served (401: no token)')
  const over = await ask('busy')
  t.same([over.status, over.json.error.code], [429, 'MM_ERR_CIRCUIT_RATE'], 'the 51st request on the circuit is refused')
  t.equal((await ask('calm')).status, 401, 'another circuit is served')
  for (let i = 0; i < 100; i++) t.equal((await ask(undefined)).status, 401, 'a request without a circuit (loopback direct API) has no circuit budget')
  await s.clock.advance(1000)
  const refill = []
  for (let i = 0; i < 11; i++) refill.push((await ask('busy')).status)
  t.same(refill, [...Array(10).fill(401), 429], 'one second later, ten more')
})

t.test('the password budget: registers and logins, ten then one per 6 s, one at a time', async (t) => {
  const s = await clockedStack(t)
  const reg = await drive(s, gw(s.gateway, 'POST', '/v1/auth/register', { body: { username: 'frank', password: PASSWORD }, circuit: 'guesser' }))
  t.equal(reg.value.status, 201)
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await drive(s, gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: `ghost${i}`, password: 'wrong-one' }, circuit: 'guesser' }))).value.status)
  t.same(statuses, Array(9).fill(401).concat(429), 'the register and nine logins use the burst of ten; the next is refused')
  const refused = await gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'frank', password: PASSWORD }, circuit: 'guesser' })
  t.same([refused.status, refused.json.error.code], [429, 'MM_ERR_CIRCUIT_RATE'], 'even with the right password: this circuit is over its budget')
  const other = await gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'frank', password: PASSWORD }, circuit: 'franks-own' })
  t.equal(other.status, 200, 'frank on his own circuit signs in')
  t.equal((await gw(s.gateway, 'GET', '/v1/rooms/lobby/messages', { circuit: 'guesser', token: other.json.token })).status, 200, 'and the guessing circuit may still make other requests')
  await s.clock.advance(6500)
  t.equal((await gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'frank', password: PASSWORD }, circuit: 'guesser' })).status, 200, '6.5 s later it has one more')

  const pair = await Promise.all([0, 1].map(() => gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'frank', password: PASSWORD }, circuit: 'twice' })))
  t.same(pair.map((r) => r.status).sort(), [200, 429], 'two logins at once on one circuit: one runs, one is refused')
  t.equal(pair.find((r) => r.status === 429)!.json.error.code, 'MM_ERR_CIRCUIT_RATE')
})

t.test('through the real final hop: the budget follows the circuit the final hop names', async (t) => {
  const s = await clockedStack(t, { circuitLimits: { requestBurst: 5, requestRate: 0.001 } })
  const net = new InProcessNet()
  t.teardown(() => net.close())
  const relay = net.addRelay('127.0.0.11')
  const identity = identityFor('final-gateway', '127.0.0.20')
  const contexts = new Set<string>()
  const endpoint = finalHopEndpoint({
    identity,
    log: silentLogger,
    maxCircuits: 100,
    circuitTtlMs: 600_000,
    clock: net.clock,
    handler: async (req, ctx) => {
      contexts.add(ctx.circuit)
      const res = await s.gateway({ method: req.method, url: req.path, contentType: req.headers['content-type'], authorization: req.headers.authorization, body: req.body, circuit: ctx.circuit })
      const headers: Record<string, string> = res.contentType === undefined ? {} : { 'content-type': res.contentType }
      return { status: res.status, headers, body: res.body }
    },
  })
  t.teardown(() => endpoint.closeAll())
  const d = hopDescriptor(identity, { role: 'server', nickname: 'gateway', host: '127.0.0.20', port: 443, lifetimeMs: 3600_000 })
  net.listeners.set('127.0.0.20:443', { accept: (ch) => endpoint.accept(ch) })
  net.publish([relay.d], d)

  const a = await RawCircuit.build(net, [relay.d, d], { from: '127.0.0.77' })
  const b = await RawCircuit.build(net, [relay.d, d], { from: '127.0.0.78' })
  const health = async (c: RawCircuit) => (await c.request({ method: 'GET', path: '/healthz', headers: {}, body: Buffer.alloc(0) })).status
  const onA: number[] = []
  for (let i = 0; i < 6; i++) onA.push(await health(a))
  t.same(onA, [200, 200, 200, 200, 200, 429], 'circuit A: five requests, then refused')
  t.equal(await health(b), 200, 'circuit B through the same relay and final hop is served')
  t.equal(contexts.size, 2, 'the final hop named two circuits')
  t.notOk([...contexts].some((c) => c.includes('127.0.0.')), 'and no address is in a circuit\'s name (P1)')
})
