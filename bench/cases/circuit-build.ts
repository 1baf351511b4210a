// Case 1: time to build a 3-relay circuit plus the server handshake (CREATE, then
// three EXTENDs), over a warm link to the entry relay; each circuit is destroyed
// right after, so the relays' circuit counts stay flat.
import { ChannelPool } from '../../src/roles/client/circuit.js'
import { buildCircuit } from '../lib/api.js'
import { fullPath, type BenchNetwork } from '../lib/network.js'
import { nowMs, percentiles, type Percentiles } from '../lib/stats.js'

export async function benchCircuitBuild (net: BenchNetwork, builds: number): Promise<Percentiles> {
  const links = new ChannelPool('127.0.0.77')
  try {
    const path = fullPath(net)
    // warm the link, the relays' channels and the JIT (the first builds of a fresh
    // network take several times longer); the quick mode stops after three
    const warmUntil = nowMs() + (builds >= 200 ? 1000 : 0)
    for (let i = 0; i < 3 || nowMs() < warmUntil; i++) (await buildCircuit(path, links)).destroy()
    const samples: number[] = []
    for (let i = 0; i < builds; i++) {
      const t = nowMs()
      const c = await buildCircuit(path, links)
      samples.push(nowMs() - t)
      c.destroy()
    }
    return percentiles(samples)
  } finally {
    await links.close()
  }
}
