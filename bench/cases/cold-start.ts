// Case 7: cold start of the single executable (`dist/marshmello --version`) against
// a bare `node -e 0`, median of 10 runs each; skipped when the binary is not built.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../lib/procs.js'
import { median, nowMs, round } from '../lib/stats.js'

export type ColdStart = { binaryMs: number, nodeMs: number, ratio: number, runs: number } | { skipped: string }

export function benchColdStart (runs = 10): ColdStart {
  const bin = join(ROOT, 'dist', 'marshmello')
  if (!existsSync(bin)) return { skipped: 'skipped (run npm run build:binary)' }
  const time = (cmd: string, args: string[]) => {
    const xs: number[] = []
    for (let i = 0; i < runs; i++) {
      const t = nowMs()
      const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } })
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`)
      xs.push(nowMs() - t)
    }
    return median(xs)
  }
  const nodeMs = time(process.execPath, ['-e', '0'])
  const binaryMs = time(bin, ['--version'])
  return { binaryMs: round(binaryMs, 1), nodeMs: round(nodeMs, 1), ratio: round(binaryMs / nodeMs, 2), runs }
}
