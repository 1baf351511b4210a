// Case 1: time to build a 3-relay circuit plus the final hop's handshake (CREATE,
// then three EXTENDs), over a warm channel to the entry relay; each circuit is
// destroyed right after, so the relays' circuit counts stay flat. The path is the
// main network's (fullPath) or the echo case's.
import { ChannelPool } from '../../src/roles/client/circuits/channel-pool.js'
import { buildCircuit } from '../lib/api.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { nowMs, percentiles, type Percentiles } from '../lib/stats.js'

export async function benchCircuitBuild (path: Descriptor[], builds: number): Promise<Percentiles> {
  const channels = new ChannelPool('127.0.0.77')
  try {
    // warm the link, the relays' channels and the JIT (the first builds of a fresh
    // network take several times longer); the quick mode stops after three
    const warmUntil = nowMs() + (builds >= 200 ? 1000 : 0)
    for (let i = 0; i < 3 || nowMs() < warmUntil; i++) (await buildCircuit(path, channels)).destroy()
    const samples: number[] = []
    for (let i = 0; i < builds; i++) {
      const t = nowMs()
      const c = await buildCircuit(path, channels)
      samples.push(nowMs() - t)
      c.destroy()
    }
    return percentiles(samples)
  } finally {
    await channels.close()
  }
}
