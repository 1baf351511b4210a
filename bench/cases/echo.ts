// Echo case: the onion's own cost. The same client (Circuit over a ChannelPool) and
// three relays, but the final hop answers each request with its body at once (no
// auth, no store), so the figures compare with Tor measured against an echo server
// on the same work: circuit build, one ~200-byte request awaited on a warm circuit,
// and closed-loop requests per second with 1 and 16 clients, each on its own circuit.
import { ChannelPool } from '../../src/roles/client/circuits/channel-pool.js'
import type { Circuit } from '../../src/roles/client/circuits/circuit.js'
import { buildCircuit } from '../lib/api.js'
import type { EchoNetwork } from '../lib/echo-network.js'
import { nowMs, percentiles, round, type Percentiles } from '../lib/stats.js'
import { benchCircuitBuild } from './circuit-build.js'

export interface EchoLevel { clients: number, seconds: number, sends: number, errors: number, sendsPerSec: number, latency: Percentiles }
export interface EchoResult { circuitBuild: Percentiles, roundTrip: Percentiles, throughput: EchoLevel[] }

const BODY = Buffer.alloc(200, 0x78)

/** one request through the circuit; throws unless the echo came back whole */
async function echo (c: Circuit): Promise<void> {
  const res = await c.request({ method: 'POST', path: '/echo', headers: { 'content-type': 'application/octet-stream' }, body: BODY })
  if (res.status !== 200 || !BODY.equals(res.body)) throw new Error(`echo: HTTP ${res.status}, ${res.body.length} bytes back`)
}

export async function benchEcho (net: EchoNetwork, plan: { builds: number, roundTrips: number, levels: number[], seconds: number }): Promise<EchoResult> {
  const circuitBuild = await benchCircuitBuild(net.path, plan.builds)
  const channels = new ChannelPool('127.0.0.77')
  let roundTrip: Percentiles
  try {
    const c = await buildCircuit(net.path, channels)
    const warmUntil = nowMs() + (plan.roundTrips >= 1000 ? 3000 : 200)
    for (let i = 0; i < Math.min(100, plan.roundTrips) || nowMs() < warmUntil; i++) await echo(c)
    const samples: number[] = []
    for (let i = 0; i < plan.roundTrips; i++) { const t = nowMs(); await echo(c); samples.push(nowMs() - t) }
    c.destroy()
    roundTrip = percentiles(samples)
  } finally {
    await channels.close()
  }
  const throughput: EchoLevel[] = []
  for (const clients of plan.levels) throughput.push(await level(net, clients, plan.seconds))
  return { circuitBuild, roundTrip, throughput }
}

async function level (net: EchoNetwork, clients: number, seconds: number): Promise<EchoLevel> {
  const pools = Array.from({ length: clients }, () => new ChannelPool('127.0.0.77'))
  try {
    const circuits = await Promise.all(pools.map((channels) => buildCircuit(net.path, channels)))
    await Promise.all(circuits.map(echo))
    const lat: number[] = []
    let errors = 0
    const t0 = nowMs()
    const end = t0 + seconds * 1000
    await Promise.all(circuits.map(async (c) => {
      while (nowMs() < end) {
        const t = nowMs()
        try {
          await echo(c)
          lat.push(nowMs() - t)
        } catch {
          if (++errors > 1000) throw new Error('echo: more than 1000 failed requests')
        }
      }
    }))
    const elapsed = (nowMs() - t0) / 1000
    for (const c of circuits) c.destroy()
    return { clients, seconds: round(elapsed, 2), sends: lat.length, errors, sendsPerSec: Math.round(lat.length / elapsed), latency: percentiles(lat) }
  } finally {
    await Promise.allSettled(pools.map((p) => p.close()))
  }
}
