// A loopback network for the bench: one server process (final hop, API, directory,
// --direct-api) and three relay processes on their own loopback addresses, each
// registered with the directory; returns the verified consensus and the pids.
// Waits (bounded) until every relay's cached consensus lists all relays and the server.
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fetchDocument } from '../../src/roles/common/signed-fetch.js'
import { verifyConsensus, type Consensus } from '../../src/onion/directory/consensus.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { start, tmp, type Child } from './procs.js'
import { sleep } from './stats.js'

export interface BenchNetwork {
  dir: string
  server: Child
  serverUrl: string
  directUrl: string
  directoryKey: string
  relays: { child: Child, url: string, descriptor: Descriptor }[]
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

export interface NetworkOptions {
  /** extra node arguments for every relay (profiling: --cpu-prof --cpu-prof-dir=DIR) */
  relayNodeArgs?: string[]
  serverNodeArgs?: string[]
}

export async function startNetwork (opts: NetworkOptions = {}): Promise<BenchNetwork> {
  const dir = tmp('mm-bench-')
  const port = await freePort()
  const direct = await freePort()
  const server = start('server', ['server', '--port', String(port), '--host', '127.0.0.1', '--data-dir', join(dir, 'server'), '--direct-api', String(direct), '--relay-stale', '120'], opts.serverNodeArgs)
  const key = (await server.waitFor(/directory key ([0-9a-f]{64})/))[1]
  const directUrl = (await server.waitFor(/direct API .*? on (http:\/\/127\.0\.0\.1:\d+)/))[1]
  const serverUrl = `https://127.0.0.1:${port}`
  const relays = await Promise.all(RELAY_HOSTS.map(async (host, i) => {
    const child = start(`relay${i + 1}`, ['relay', '--port', '0', '--host', host, '--data-dir', join(dir, `r${i + 1}`),
      '--directory', serverUrl, '--directory-key', key, '--nickname', `relay${i + 1}`,
      '--create-rate', '100000', '--create-burst', '100000', '--max-circuits', '200000'], opts.relayNodeArgs)
    const m = await child.waitFor(/relay [0-9a-f]{64} listening on (https:\/\/[\d.]+:\d+)/)
    return { child, url: m[1] }
  }))
  // every relay must hold a consensus listing all three relays and the server before EXTEND works
  let consensus: Consensus | null = null
  for (let i = 0; i < 120 && !consensus; i++) {
    const docs = await Promise.all([serverUrl + '/v1/directory/consensus', ...relays.map((r) => r.url + '/consensus')].map(async (u) => {
      const res = await fetchDocument(u).catch(() => null)
      if (!res || res.status !== 200) return null
      try { return verifyConsensus(JSON.parse(res.text), key, Date.now()) } catch { return null }
    }))
    if (docs.every((d) => d && d.server && d.relays.length >= relays.length)) consensus = docs[0]
    else await sleep(500)
  }
  if (!consensus) throw new Error('relays did not converge on a consensus within 60 s')
  const byUrl = new Map(consensus.relays.map((d) => [`https://${d.host}:${d.port}`, d]))
  return {
    dir,
    server,
    serverUrl,
    directUrl,
    directoryKey: key,
    relays: relays.map((r) => ({ ...r, descriptor: byUrl.get(r.url)! })),
    consensus,
  }
}

/** the three relays in order, then the server */
export const fullPath = (net: BenchNetwork): Descriptor[] => [...net.relays.map((r) => r.descriptor), net.consensus.server!]

/** GET /metrics of a relay */
export async function relayMetrics (url: string): Promise<{ cellsForwarded: number, cellsBackward: number, circuits: number, memory: number }> {
  const res = await fetchDocument(url + '/metrics')
  return JSON.parse(res.text)
}
