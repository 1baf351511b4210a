// A small real network for the web UI tests (server + N relays, devnet.json for
// `--devnet DIR`), started by test/helpers/network.ts.
import type { Proc } from '../../../helpers/net.js'
import { startNetwork } from '../../../helpers/network.js'

export interface SmallNet { dir: string, directoryKey: string, procs: Proc[], stop: () => Promise<void> }

export async function startSmallNet (relays = 3): Promise<SmallNet> {
  const net = await startNetwork({ relays })
  return { dir: net.dir, directoryKey: net.directoryKey, procs: [net.server.proc, ...net.relays.map((r) => r.proc)], stop: net.stop }
}
