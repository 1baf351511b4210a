// The devnet's live counts: each role's /metrics, read with that role's operator token
// from its data dir (PROTOCOL §8: public endpoints show no counters), summed into one
// line's worth of numbers (users, messages, circuits at the server and across relays).
// A role that does not answer, or whose token cannot be read, is named, not fatal.
import { fetchOperatorJson, readOperatorCredentials, type OperatorCredentials } from '../common/operator.js'
import type { DevnetInfo, RoleInfo } from './devnet-file.js'

export interface DevnetStats {
  at: number
  users: number
  messages: number
  /** circuits the server (final hop) holds */
  circuits: number
  /** circuits held by relays, summed */
  relayCircuits: number
  relaysListed: number
  circuitsServed: number
  requestsServed: number
  /** roles whose /metrics did not answer */
  unreachable: string[]
}

async function metrics (role: RoleInfo): Promise<Record<string, unknown> | null> {
  let creds: OperatorCredentials
  try {
    creds = readOperatorCredentials(role.dataDir)
  } catch {
    return null
  }
  return fetchOperatorJson(`${role.url}/metrics`, creds)
}

const num = (v: unknown): number => typeof v === 'number' && Number.isFinite(v) ? v : 0

export async function collectStats (info: DevnetInfo): Promise<DevnetStats> {
  const [server, ...relays] = await Promise.all([metrics(info.server), ...info.relays.map((r) => metrics(r))])
  const unreachable: string[] = []
  if (!server) unreachable.push('server')
  relays.forEach((h, i) => { if (!h) unreachable.push(info.relays[i].nickname) })
  return {
    at: Date.now(),
    users: num(server?.users),
    messages: num(server?.messages),
    circuits: num(server?.circuits),
    relayCircuits: relays.reduce((s, h) => s + num(h?.circuits), 0),
    relaysListed: num(server?.relays),
    circuitsServed: num(server?.circuitsServed),
    requestsServed: num(server?.requestsServed),
    unreachable,
  }
}
