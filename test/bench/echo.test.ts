// The bench's echo case in quick mode (bench/cases/echo.ts): three relay processes
// and the echo final hop process start, and every figure it reports exists and is
// positive. No timing assertions: this machine's speed is not under test. Needs the
// build (the relays run build/cli.js).
import t from 'tap'
import { startEchoNetwork } from '../../bench/lib/echo-network.js'
import { QUICK_PLAN } from '../../bench/lib/plan.js'
import { stopAll } from '../../bench/lib/procs.js'
import { benchEcho } from '../../bench/cases/echo.js'

t.test('the echo case runs in quick mode and returns sane numbers', async (t) => {
  t.teardown(stopAll)
  const net = await startEchoNetwork()
  t.equal(net.path.length, 4, 'three relays, then the echo hop')
  t.equal(net.path[3].role, 'server', 'the echo hop is listed as the final hop')
  const plan = QUICK_PLAN
  const r = await benchEcho(net, { builds: plan.builds, roundTrips: plan.roundTrips, levels: plan.echoLevels, seconds: plan.seconds })
  for (const [name, p] of [['circuit build', r.circuitBuild], ['round trip', r.roundTrip]] as const) {
    t.equal(p.n, name === 'circuit build' ? plan.builds : plan.roundTrips, `${name}: every sample taken`)
    for (const k of ['p50', 'p90', 'p99', 'mean'] as const) t.ok(Number.isFinite(p[k]) && p[k] > 0, `${name} ${k} is positive (${p[k]})`)
    t.ok(p.p50 <= p.p90 && p.p90 <= p.p99, `${name}: p50 ≤ p90 ≤ p99`)
  }
  t.same(r.throughput.map((l) => l.clients), [1, 16], 'levels of 1 and 16 clients')
  for (const l of r.throughput) {
    t.ok(l.sendsPerSec > 0 && l.sends > 0, `${l.clients} clients: ${l.sendsPerSec} requests/s`)
    t.equal(l.errors, 0, `${l.clients} clients: no failed request`)
    t.ok(l.latency.p50 > 0 && l.latency.p99 >= l.latency.p50, `${l.clients} clients: latency percentiles`)
  }
})
