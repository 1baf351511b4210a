// Small statistics for the bench: percentiles over latency samples (ms) and a
// monotonic clock. Nearest-rank percentiles; no interpolation, no outlier removal.

export interface Percentiles { n: number, p50: number, p90: number, p99: number, mean: number }

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

export function percentiles (samples: number[]): Percentiles {
  if (samples.length === 0) return { n: 0, p50: NaN, p90: NaN, p99: NaN, mean: NaN }
  const s = [...samples].sort((a, b) => a - b)
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
  const mean = s.reduce((a, b) => a + b, 0) / s.length
  return { n: s.length, p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), mean: round(mean) }
}

export const median = (xs: number[]): number => percentiles(xs).p50

export const round = (x: number, digits = 3): number => Number.isFinite(x) ? Number(x.toFixed(digits)) : x
