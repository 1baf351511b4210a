// A small real network for the web UI tests (server + N relays, devnet.json for
// `--devnet DIR`), started by test/helpers/network.ts, and a way to take its relays
// down and bring them back at the same address (same data dir, so the same
// identity and fingerprint) for outage tests.
import { spawn } from 'node:child_process'
import { procOf, type Proc } from '../../../helpers/net.js'
import { startNetwork, stopProc, type Network } from '../../../helpers/network.js'

export interface SmallNet {
  dir: string
  directoryKey: string
  procs: Proc[]
  net: Network
  /** SIGKILLs every relay */
  relaysDown: () => Promise<void>
  /** starts every relay again on its former host and port; resolves once each listens */
  relaysUp: () => Promise<void>
  stop: () => Promise<void>
}

export async function startSmallNet (relays = 3): Promise<SmallNet> {
  const net = await startNetwork({ relays })
  const current: Proc[] = net.relays.map((r) => r.proc)
  const restarted: Proc[] = []
  return {
    dir: net.dir,
    directoryKey: net.directoryKey,
    procs: [net.server.proc, ...current],
    net,
    async relaysDown () {
      await Promise.all(current.map((p) => p.child.exitCode === null && p.child.signalCode === null ? p.kill('SIGKILL') : null))
    },
    async relaysUp () {
      await Promise.all(net.relays.map(async (r, i) => {
        const args = [...current[i].child.spawnargs]
        args[args.indexOf('--port') + 1] = String(r.port)
        const p = procOf(spawn(args[0], args.slice(1), { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] }))
        current[i] = p
        restarted.push(p)
        await p.waitFor(/listening on https:\/\//, 30_000)
      }))
    },
    async stop () {
      await Promise.all(restarted.map((p) => stopProc(p)))
      await net.stop()
    },
  }
}
