// The performance targets and whether a run met them. A target whose figure was
// not measured (quick mode leaves out the 16-client level) reads "not measured".
import type { BenchResults } from './results.js'

export interface TargetCheck { target: string, figure: string, met: boolean | null }

export function checkTargets (r: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = []
  const add = (target: string, value: number | undefined, limit: number, cmp: 'le' | 'ge', fmt: (v: number) => string) => {
    const ok = value === undefined || !Number.isFinite(value) ? null : cmp === 'le' ? value <= limit : value >= limit
    out.push({ target, figure: value === undefined || !Number.isFinite(value) ? 'not measured' : fmt(value), met: ok })
  }
  add('onion round trip ≤ 4.5 × direct (p50)', r.roundTrip?.ratioP50, 4.5, 'le', (v) => `${v} ×`)
  add('circuit build p50 ≤ 8 ms', r.circuitBuild?.p50, 8, 'le', (v) => `${v} ms`)
  const rt = r.roundTrip?.onion.p50
  add('delivery p50 ≤ 2 × warm round trip', r.delivery && rt ? r.delivery.p50 / rt : undefined, 2, 'le', (v) => `${v.toFixed(2)} × (${r.delivery!.p50} ms vs ${rt} ms)`)
  add('≥ 3,000 sends/s at 16 concurrent clients', r.throughput?.find((l) => l.clients === 16)?.sendsPerSec, 3000, 'ge', (v) => `${v} sends/s`)
  add('relay ≥ 12,000 cells per CPU-second', r.relaySaturation?.cellsPerCpuSecond, 12_000, 'ge', (v) => `${v} cells/CPU-s (${r.relaySaturation!.relay})`)
  add('sealed DM send ≤ 1.3 × room send (p50, same client)', r.dm?.ratioP50, 1.3, 'le', (v) => `${v} × (${r.dm!.send.p50} ms vs ${r.dm!.roomSend.p50} ms)`)
  add('≤ 1 KiB relay memory per idle circuit', r.relayMemory?.bytesPerCircuit, 1024, 'le', (v) => `${v} B/circuit`)
  return out
}

export const verdict = (met: boolean | null): string => met === null ? 'not measured' : met ? 'met' : 'NOT met'
