// Summarises .cpuprofile files (from node --cpu-prof): the top functions by self
// time, with their share of samples. Usage: node --import tsx bench/profile-summary.ts FILE… [--top=25]
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface Profile { nodes: Node[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

const files = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const top = Number(process.argv.find((a) => a.startsWith('--top='))?.slice(6) ?? 25)

for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  p.samples.forEach((id, i) => {
    const n = byId.get(id)!
    const dt = p.timeDeltas[i] ?? 0
    const f = n.callFrame
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules\/)?/, '')}:${f.lineNumber + 1}`
    self.set(name, (self.get(name) ?? 0) + dt)
    total += dt
  })
  const busy = total - (self.get('(idle) :0') ?? 0)
  console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy`)
  self.delete('(idle) :0')
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${(us / 1000).toFixed(0).padStart(7)} ms  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`)
  }
}
