// The devnet's live counts: each role's /healthz summed into one line's worth of
// numbers (users, messages, circuits at the server and across relays). A role that
// does not answer is named, not fatal.
import { fetchDocument } from '../common/signed-fetch.js'
import type { DevnetInfo } from './devnet-file.js'

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
  /** roles whose /healthz did not answer */
  unreachable: string[]
}

async function health (url: string): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetchDocument(`${url}/healthz`)
    return res.status === 200 ? JSON.parse(res.text) : null
  } catch {
    return null
  }
}

const num = (v: unknown): number => typeof v === 'number' && Number.isFinite(v) ? v : 0

export async function collectStats (info: DevnetInfo): Promise<DevnetStats> {
  const [server, ...relays] = await Promise.all([health(info.server.url), ...info.relays.map((r) => health(r.url))])
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
