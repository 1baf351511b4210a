// Case 4: closed-loop throughput. C clients, each on its own circuit (and its own
// channel to the entry relay), send ~200-byte room messages back to back for a
// fixed time. Per level: sends/s, send latency percentiles, and for every relay the
// cells it moved per second and per CPU-second (/proc/PID/stat utime+stime).
import { ChannelPool } from '../../src/roles/client/circuits/channel-pool.js'
import { buildCircuit, circuitClient, directClient, loginAs, send, type ApiClient } from '../lib/api.js'
import { fullPath, relayMetrics, type BenchNetwork } from '../lib/network.js'
import { cpuSeconds } from '../lib/procs.js'
import { nowMs, percentiles, round, type Percentiles } from '../lib/stats.js'

export interface RelayLoad { relay: string, cellsPerSec: number, cpuSeconds: number, cellsPerCpuSecond: number, cpuUtilisation: number }

export interface ThroughputLevel {
  clients: number, seconds: number, sends: number, errors: number, sendsPerSec: number, latency: Percentiles, relays: RelayLoad[]
  /** share of one core used by the server process and by the bench (client) process */
  serverCpu: number, clientCpu: number
  /** CPU time per send summed over every process (server, the bench's clients, relays), µs: comparable across machines of one speed */
  cpuPerSendUs: number
}

const USERS = 4

export async function benchThroughput (net: BenchNetwork, levels: number[], seconds: number): Promise<ThroughputLevel[]> {
  const direct = directClient(net.directUrl, 2)
  const tokens: string[] = []
  try {
    for (let i = 0; i < USERS; i++) tokens.push(await loginAs(direct, `tp-user-${i}`))
  } finally {
    await direct.close()
  }
  const out: ThroughputLevel[] = []
  for (const clients of levels) out.push(await level(net, clients, seconds, tokens))
  return out
}

async function level (net: BenchNetwork, clients: number, seconds: number, tokens: string[]): Promise<ThroughputLevel> {
  const pools: ChannelPool[] = []
  const apis: ApiClient[] = []
  try {
    const path = fullPath(net)
    for (let i = 0; i < clients; i += 16) {
      const batch = Array.from({ length: Math.min(16, clients - i) }, async () => {
        const channels = new ChannelPool('127.0.0.77')
        pools.push(channels)
        return circuitClient(await buildCircuit(path, channels))
      })
      apis.push(...await Promise.all(batch))
    }
    // warm every circuit once
    await Promise.all(apis.map((api, i) => send(api, tokens[i % tokens.length], 'tp-warm')))
    const before = await Promise.all(net.relays.map(async (r) => ({ m: await relayMetrics(r.url, r.dataDir), cpu: cpuSeconds(r.pid) })))
    const server0 = cpuSeconds(net.server.pid)
    const client0 = process.cpuUsage()
    const t0 = nowMs()
    const end = t0 + seconds * 1000
    const lat: number[] = []
    let errors = 0
    await Promise.all(apis.map(async (api, i) => {
      const token = tokens[i % tokens.length]
      while (nowMs() < end) {
        const t = nowMs()
        try {
          await send(api, token, 'tp')
          lat.push(nowMs() - t)
        } catch {
          if (++errors > 1000) throw new Error('throughput: more than 1000 failed sends')
        }
      }
    }))
    const elapsed = (nowMs() - t0) / 1000
    const serverCpuS = cpuSeconds(net.server.pid) - server0
    const c = process.cpuUsage(client0)
    const clientCpuS = (c.user + c.system) / 1e6
    const serverCpu = round(serverCpuS / elapsed, 2)
    const clientCpu = round(clientCpuS / elapsed, 2)
    const after = await Promise.all(net.relays.map(async (r) => ({ m: await relayMetrics(r.url, r.dataDir), cpu: cpuSeconds(r.pid) })))
    const relays = net.relays.map((r, i): RelayLoad => {
      const cells = (after[i].m.cellsForwarded + after[i].m.cellsBackward) - (before[i].m.cellsForwarded + before[i].m.cellsBackward)
      const cpu = after[i].cpu - before[i].cpu
      return { relay: r.descriptor.nickname, cellsPerSec: Math.round(cells / elapsed), cpuSeconds: round(cpu, 2), cellsPerCpuSecond: cpu > 0 ? Math.round(cells / cpu) : NaN, cpuUtilisation: round(cpu / elapsed, 2) }
    })
    const cpuTotal = serverCpuS + clientCpuS + after.reduce((sum, a, i) => sum + a.cpu - before[i].cpu, 0)
    const cpuPerSendUs = lat.length > 0 ? Math.round((cpuTotal * 1e6) / lat.length) : NaN
    return { clients, seconds: round(elapsed, 2), sends: lat.length, errors, sendsPerSec: Math.round(lat.length / elapsed), latency: percentiles(lat), relays, serverCpu, clientCpu, cpuPerSendUs }
  } finally {
    await Promise.allSettled(apis.map((a) => a.close()))
    await Promise.allSettled(pools.map((p) => p.close()))
  }
}
