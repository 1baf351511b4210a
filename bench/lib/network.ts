// The bench's loopback network, started by the devnet's own code (startDevnet in
// src/roles/devnet/index.ts): one server process (final hop, API, directory,
// --direct-api) and three relay processes on their own loopback addresses, each
// registered with the directory and ready once every cached consensus lists them
// all; returns the verified consensus, the pids and the devnet to stop.
import { fetchOperatorJson, readOperatorCredentials } from '../../src/roles/common/operator.js'
import { createServer } from 'node:net'
import { fetchDocument } from '../../src/roles/common/signed-fetch.js'
import { verifyConsensus, type Consensus } from '../../src/onion/directory/consensus.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { spawnRole, type SpawnRole } from '../../src/roles/devnet/children.js'
import { startDevnet } from '../../src/roles/devnet/index.js'
import { CLI, onStop, tmp } from './procs.js'

export interface BenchRole { pid: number, url: string }

export interface BenchNetwork {
  dir: string
  server: BenchRole
  serverUrl: string
  directUrl: string
  directoryKey: string
  relays: (BenchRole & { descriptor: Descriptor, dataDir: string })[]
  consensus: Consensus
}

export function freePort (host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export const RELAY_HOSTS = ['127.0.0.11', '127.0.0.12', '127.0.0.13']

/** relays that accept as many circuits as the bench builds */
export const BENCH_RELAY_ARGS = ['--create-rate', '100000', '--create-burst', '100000', '--relay-create-rate', '100000', '--relay-create-burst', '100000', '--max-circuits', '200000']

export interface NetworkOptions {
  /** extra node arguments for every relay (profiling: --cpu-prof --cpu-prof-dir=DIR) */
  relayNodeArgs?: string[]
  serverNodeArgs?: string[]
}

/** how the bench starts a role: the built CLI (or `command`), as the devnet runs it, plus node args */
export function benchSpawn (nodeArgs: (role: string) => string[], command = { file: process.execPath, args: [CLI] }): SpawnRole {
  return (role, args, onLine) => spawnRole(role, args, onLine, { command, nodeArgs: nodeArgs(role), env: { NODE_OPTIONS: '' } })
}

/** a child's stderr goes to ours only when it dies early (its last lines are in the error) */
export const quietChildren = {
  onChildLine: () => {},
  onChildExit: (e: { role: string, code: number | null, signal: string | null, expected: boolean }) => {
    if (!e.expected) process.stderr.write(`bench: ${e.role} exited (${e.signal ?? e.code})\n`)
  },
}

export async function startNetwork (opts: NetworkOptions = {}): Promise<BenchNetwork> {
  const dir = tmp('mm-bench-')
  const direct = await freePort()
  const devnet = await startDevnet({
    relays: RELAY_HOSTS.length,
    dir,
    portBase: 0,
    host: '127.0.0.1',
    relayHosts: RELAY_HOSTS,
    serverArgs: ['--direct-api', String(direct), '--relay-stale', '120'],
    relayArgs: () => BENCH_RELAY_ARGS,
    readyTimeoutMs: 60_000,
  }, { ...quietChildren, spawn: benchSpawn((role) => (role === 'server' ? opts.serverNodeArgs : opts.relayNodeArgs) ?? []) })
  onStop(devnet.stop)
  const { info } = devnet
  const directUrl = (await devnet.processes.server!.waitForLine(/^direct API .*? on (http:\/\/127\.0\.0\.1:\d+)$/, Date.now() + 10_000))[1]
  const res = await fetchDocument(`${info.server.url}/v1/directory/consensus`)
  const consensus = verifyConsensus(JSON.parse(res.text), info.directoryKey, Date.now())
  const byFingerprint = new Map(consensus.relays.map((d) => [d.fingerprint, d]))
  return {
    dir,
    server: { pid: info.server.pid, url: info.server.url },
    serverUrl: info.server.url,
    directUrl,
    directoryKey: info.directoryKey,
    relays: info.relays.map((r) => ({ pid: r.pid, url: r.url, dataDir: r.dataDir, descriptor: byFingerprint.get(r.fingerprint)! })),
    consensus,
  }
}

/** the three relays in order, then the server */
export const fullPath = (net: BenchNetwork): Descriptor[] => [...net.relays.map((r) => r.descriptor), net.consensus.server!]

/** GET /metrics of a relay, with the operator token from its data dir (PROTOCOL §8) */
export async function relayMetrics (url: string, dataDir: string): Promise<{ cellsForwarded: number, cellsBackward: number, circuits: number, memory: number }> {
  const m = await fetchOperatorJson(url + '/metrics', readOperatorCredentials(dataDir))
  if (m === null) throw new Error(`no /metrics from ${url}`)
  return m as { cellsForwarded: number, cellsBackward: number, circuits: number, memory: number }
}
