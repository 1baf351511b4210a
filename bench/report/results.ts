// The shape of one bench run's results, as written to bench/results/latest.json.
import type { Percentiles } from '../lib/stats.js'
import type { RoundTripResult } from '../cases/round-trip.js'
import type { DeliveryResult } from '../cases/delivery.js'
import type { RelayLoad, ThroughputLevel } from '../cases/throughput.js'
import type { MemoryResult } from '../cases/relay-memory.js'
import type { StoreFigure } from '../cases/storage.js'
import type { PathCompromise } from '../cases/path-compromise.js'
import type { ColdStart } from '../cases/cold-start.js'
import type { EchoResult } from '../cases/echo.js'
import type { DmResult } from '../cases/dm.js'
import type { Machine } from './machine.js'

export interface BenchResults {
  version: 1
  mode: 'full' | 'quick'
  startedAt: string
  durationSeconds?: number
  machine: Machine
  circuitBuild?: Percentiles
  roundTrip?: RoundTripResult
  delivery?: DeliveryResult
  throughput?: ThroughputLevel[]
  /** the busiest relay at the highest concurrency: the lowest cells per CPU-second */
  relaySaturation?: RelayLoad & { clients: number }
  /** direct messages through the real client, beside its room sends */
  dm?: DmResult
  relayMemory?: MemoryResult
  /** the onion alone: three relays and a final hop that echoes (no auth, no store) */
  echo?: EchoResult
  storage?: StoreFigure[]
  coldStart?: ColdStart
  pathCompromise?: PathCompromise
  targets?: { target: string, figure: string, met: boolean | null }[]
  errors: { case: string, message: string }[]
}
