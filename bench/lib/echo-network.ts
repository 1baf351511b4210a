// The onion-only network of the echo case: three relay processes and a final hop
// process that echoes (echo-hop-main.ts), started by the devnet's own code without a
// server (startDevnet, mode `file`: the relays read a consensus file the devnet signs
// with a key of its own, listing them and the echo hop), as Tor would be measured
// against an echo server: no server, no directory, no store on the path.
import { fileURLToPath } from 'node:url'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { startDevnet } from '../../src/roles/devnet/index.js'
import { BENCH_RELAY_ARGS, benchSpawn, quietChildren, type BenchRole } from './network.js'
import { onStop, tmp } from './procs.js'

export interface EchoNetwork {
  /** the three relays, then the echo final hop */
  path: Descriptor[]
  relays: BenchRole[]
  hop: { pid: number }
}

export const ECHO_RELAY_HOSTS = ['127.0.0.31', '127.0.0.32', '127.0.0.33']
const ECHO_HOST = '127.0.0.30'
const ECHO_MAIN = fileURLToPath(new URL('./echo-hop-main.ts', import.meta.url))

export async function startEchoNetwork (nodeArgs: string[] = []): Promise<EchoNetwork> {
  const dir = tmp('mm-bench-echo-')
  const deadline = Date.now() + 60_000
  const spawnEcho = benchSpawn(() => nodeArgs, { file: process.execPath, args: ['--import', 'tsx', ECHO_MAIN] })
  const hop = spawnEcho('echo', [ECHO_HOST], quietChildren.onChildLine)
  onStop(async () => { await hop.stop(5000) })
  const hopDescriptor = JSON.parse((await hop.waitForLine(/^echo hop listening (\{.*\})$/, deadline))[1]) as Descriptor
  const devnet = await startDevnet({
    mode: 'file',
    finalHop: { descriptor: hopDescriptor, pid: hop.pid },
    relays: ECHO_RELAY_HOSTS.length,
    dir,
    portBase: 0,
    host: '127.0.0.1',
    relayHosts: ECHO_RELAY_HOSTS,
    relayArgs: () => BENCH_RELAY_ARGS,
    readyTimeoutMs: 60_000,
  }, { ...quietChildren, spawn: benchSpawn(() => nodeArgs) })
  onStop(devnet.stop)
  return { path: [...devnet.descriptors!, hopDescriptor], relays: devnet.info.relays.map((r) => ({ pid: r.pid, url: r.url })), hop: { pid: hop.pid } }
}
