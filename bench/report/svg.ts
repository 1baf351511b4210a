// A hand-written SVG line chart: send round-trip latency p50 and p99 (ms, log
// scale) against the number of concurrent clients (log scale), one point per level.
import type { ThroughputLevel } from '../cases/throughput.js'

const W = 640
const H = 400
const PAD = { l: 64, r: 24, t: 40, b: 56 }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')

export function latencyChart (levels: ThroughputLevel[], subtitle: string): string {
  const pts = levels.filter((l) => l.latency.n > 0)
  const xs = pts.map((l) => l.clients)
  const ys = pts.flatMap((l) => [l.latency.p50, l.latency.p99])
  const xMin = Math.log10(Math.min(...xs, 1))
  const xMax = Math.log10(Math.max(...xs, 2))
  const yMin = Math.floor(Math.log10(Math.max(0.1, Math.min(...ys, 1))))
  const yMax = Math.ceil(Math.log10(Math.max(...ys, 10)))
  const x = (v: number) => PAD.l + ((Math.log10(v) - xMin) / (xMax - xMin || 1)) * (W - PAD.l - PAD.r)
  const y = (v: number) => H - PAD.b - ((Math.log10(Math.max(v, 0.1)) - yMin) / (yMax - yMin || 1)) * (H - PAD.t - PAD.b)
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">Room send round trip through 3 relays vs concurrent clients</text>`)
  out.push(`<text x="${W / 2}" y="33" text-anchor="middle" fill="#666">${esc(subtitle)}</text>`)
  for (let e = yMin; e <= yMax; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e
      if (Math.log10(v) > yMax) continue
      out.push(`<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`)
      out.push(`<text x="${PAD.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v < 1 ? v.toFixed(1) : v}</text>`)
    }
  }
  for (const c of xs) {
    out.push(`<line x1="${x(c).toFixed(1)}" x2="${x(c).toFixed(1)}" y1="${PAD.t}" y2="${H - PAD.b}" stroke="#eee"/>`)
    out.push(`<text x="${x(c).toFixed(1)}" y="${H - PAD.b + 16}" text-anchor="middle">${c}</text>`)
  }
  out.push(`<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${H - PAD.b}" y2="${H - PAD.b}" stroke="#333"/>`)
  out.push(`<line x1="${PAD.l}" x2="${PAD.l}" y1="${PAD.t}" y2="${H - PAD.b}" stroke="#333"/>`)
  out.push(`<text x="${W / 2}" y="${H - 14}" text-anchor="middle">concurrent clients (each on its own circuit)</text>`)
  out.push(`<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`)
  const series: [string, string, (l: ThroughputLevel) => number][] = [['p50', '#1f77b4', (l) => l.latency.p50], ['p99', '#d62728', (l) => l.latency.p99]]
  series.forEach(([name, color, f], i) => {
    const d = pts.map((l, j) => `${j ? 'L' : 'M'}${x(l.clients).toFixed(1)},${y(f(l)).toFixed(1)}`).join(' ')
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`)
    for (const l of pts) out.push(`<circle cx="${x(l.clients).toFixed(1)}" cy="${y(f(l)).toFixed(1)}" r="3.5" fill="${color}"><title>${l.clients} clients: ${name} ${f(l)} ms</title></circle>`)
    out.push(`<rect x="${PAD.l + 12}" y="${PAD.t + 8 + i * 18}" width="14" height="3" fill="${color}"/><text x="${PAD.l + 32}" y="${PAD.t + 13 + i * 18}">${name}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
