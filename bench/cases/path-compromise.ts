// The path-compromise case (issue 15 item 8): the simulation of bench/lib/path-sim.ts (the
// real guard module, path choice and consensus checks on a fake clock, no sockets) for an
// attacker holding 1 %, 5 %, 10 % and 20 % of the relays, the new client against the one
// before issue 15, over 30 simulated days. Pure CPU; the figures do not depend on the machine.
import { simulate, table, type SimResult } from '../lib/path-sim.js'

export interface PathCompromise {
  shares: number[]
  clients: { new: number, old: number }
  rows: { old: SimResult, new: SimResult }[]
  /** the README table */
  table: string
}

export async function benchPathCompromise (quick: boolean): Promise<PathCompromise> {
  const shares = [0.01, 0.05, 0.1, 0.2]
  const clients = quick ? { new: 200, old: 100 } : { new: 800, old: 400 }
  const o = quick ? { relays: 100, stepHours: 12, circuitsPerDay: 0.5, seed: 11 } : { relays: 200, stepHours: 6, circuitsPerDay: 1, seed: 11 }
  const rows: { old: SimResult, new: SimResult }[] = []
  for (const f of shares) {
    rows.push({ new: await simulate({ ...o, f, code: 'new', clients: clients.new }), old: await simulate({ ...o, f, code: 'old', clients: clients.old }) })
  }
  return { shares, clients, rows, table: table(rows) }
}
