// How much each bench case does: the full run, and the quick one (CI and the bench's
// own test: seconds, tiny samples, figures that only show the case works).

export interface Plan {
  builds: number
  roundTrips: number
  deliveries: number
  /** throughput: clients per level */
  levels: number[]
  /** echo case: clients per level */
  echoLevels: number[]
  /** per throughput level */
  seconds: number
  circuits: number
  storeOps: number
  /** DM case: latency samples (each a send and a receive) and throughput levels (clients, in pairs) */
  dmSamples: number
  dmLevels: number[]
}

export const QUICK_PLAN: Readonly<Plan> = { builds: 10, roundTrips: 20, deliveries: 10, levels: [1, 8], echoLevels: [1, 16], seconds: 1, circuits: 1000, storeOps: 200, dmSamples: 10, dmLevels: [4] }
export const FULL_PLAN: Readonly<Plan> = { builds: 300, roundTrips: 1000, deliveries: 200, levels: [1, 8, 16, 32, 128], echoLevels: [1, 16], seconds: 10, circuits: 100_000, storeOps: 5000, dmSamples: 200, dmLevels: [16] }
