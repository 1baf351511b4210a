// A small real network for the web UI tests (server + N relays, devnet.json for
// `--devnet DIR`), started by test/helpers/network.ts, and a way to take its relays
// down and bring them back at the same address (same data dir, so the same
// identity and fingerprint) for outage tests.
import type { Proc } from '../../../helpers/net.js'
import { startNetwork, type Network } from '../../../helpers/network.js'

export interface SmallNet {
  dir: string
  directoryKey: string
  procs: Proc[]
  net: Network
  /** SIGKILLs every relay */
  relaysDown: () => Promise<void>
  /** starts every relay again on its former host and port; resolves once the consensus lists each */
  relaysUp: () => Promise<void>
  stop: () => Promise<void>
}

export async function startSmallNet (relays = 3): Promise<SmallNet> {
  const net = await startNetwork({ relays })
  const current: Proc[] = net.relays.map((r) => r.proc)
  return {
    dir: net.dir,
    directoryKey: net.directoryKey,
    procs: [net.server.proc, ...current],
    net,
    async relaysDown () {
      await Promise.all(current.map((p) => p.child.exitCode === null && p.child.signalCode === null ? p.kill('SIGKILL') : null))
    },
    async relaysUp () {
      // the devnet starts each again with its data dir, address and flags (test/helpers/network.ts)
      await Promise.all(net.relays.map(async (r, i) => { current[i] = (await net.restartRelay(r.nickname)).proc }))
    },
    stop: net.stop,
  }
}
