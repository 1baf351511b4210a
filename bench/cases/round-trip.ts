// Case 2: one ~200-byte room send, awaited, on a warm circuit through three relays,
// against the same request straight to --direct-api (undici Pool, keep-alive). "Warm"
// means after a few seconds of sends, so that JIT warm-up is not part of the figure.
// Onion and direct samples alternate in blocks so drift affects both alike.
import { ChannelPool } from '../../src/roles/client/circuits/channel-pool.js'
import { buildCircuit, circuitClient, directClient, loginAs, send } from '../lib/api.js'
import { fullPath, type BenchNetwork } from '../lib/network.js'
import { nowMs, percentiles, round, type Percentiles } from '../lib/stats.js'

export interface RoundTripResult { onion: Percentiles, direct: Percentiles, ratioP50: number }

export async function benchRoundTrip (net: BenchNetwork, samples: number): Promise<RoundTripResult> {
  const channels = new ChannelPool('127.0.0.77')
  const direct = directClient(net.directUrl, 1)
  try {
    const onion = circuitClient(await buildCircuit(fullPath(net), channels))
    const tOnion = await loginAs(onion, 'rt-onion')
    const tDirect = await loginAs(direct, 'rt-direct')
    // warm until V8 has optimised every process's hot path: after 100 sends a round trip
    // still took 2.6 ms here, after ~1,500 it settles near 1.0 ms (the quick mode stops early)
    const warmUntil = nowMs() + (samples >= 1000 ? 3000 : 200)
    for (let i = 0; i < Math.min(100, samples) || nowMs() < warmUntil; i++) { await send(onion, tOnion, 'warm'); await send(direct, tDirect, 'warm') }
    const o: number[] = []
    const d: number[] = []
    const block = 50
    for (let done = 0; done < samples; done += block) {
      const n = Math.min(block, samples - done)
      for (let i = 0; i < n; i++) { const t = nowMs(); await send(onion, tOnion, 'rt'); o.push(nowMs() - t) }
      for (let i = 0; i < n; i++) { const t = nowMs(); await send(direct, tDirect, 'rt'); d.push(nowMs() - t) }
    }
    await onion.close()
    const onionP = percentiles(o)
    const directP = percentiles(d)
    return { onion: onionP, direct: directP, ratioP50: round(onionP.p50 / directP.p50, 2) }
  } finally {
    await direct.close()
    await channels.close()
  }
}
