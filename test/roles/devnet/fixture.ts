// Helpers for tests that start a devnet: free port ranges, the JSON events a
// `devnet --json` prints, and whether a process is gone (ESRCH, or a zombie whose
// exit only waits to be reaped by a parent that is not ours).
import { createServer } from 'node:net'
import { readFileSync } from 'node:fs'
import type { DevnetInfo } from '../../../src/roles/devnet/index.js'

/** a base port such that base … base+count-1 are all free on 127.0.0.1 */
export async function freePortBase (count: number, seed = 20000 + (process.pid % 20000)): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + ((seed - 20000 + attempt * 97) % 40000)
    let ok = true
    for (let p = base; p < base + count && ok; p++) ok = await canBind(p)
    if (ok) return base
  }
  throw new Error(`no run of ${count} free ports found`)
}

function canBind (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

export type DevnetEvent = Record<string, any> & { event: string }

/** the JSON events printed so far (non-JSON lines are a failure of --json) */
export function events (stdout: string): DevnetEvent[] {
  return stdout.split('\n').filter((l) => l.trim()).map((l) => {
    try { return JSON.parse(l) } catch { throw new Error(`devnet --json printed a non-JSON line on stdout: ${l}`) }
  })
}

export function readyEvent (stdout: string): DevnetInfo & { event: 'ready' } {
  const e = events(stdout).find((x) => x.event === 'ready')
  if (!e) throw new Error('no ready event yet')
  return e as DevnetInfo & { event: 'ready' }
}

/** the server, the other directory authorities (their own processes) and the relays */
export function pidsOf (info: DevnetInfo): number[] {
  const authorities = (info.authorities ?? []).flatMap((a) => (a.pid !== undefined && a.pid !== info.server.pid ? [a.pid] : []))
  return [info.server.pid, ...authorities, ...info.relays.map((r) => r.pid)]
}

/** true when pid no longer runs: ESRCH, or a zombie (it exited; only its status is left) */
export function isGone (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

export function parentOf (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
}

/** resolves with the pids still running after ms (empty: all gone) */
export async function survivors (pids: number[], ms: number): Promise<number[]> {
  const until = Date.now() + ms
  for (;;) {
    const left = pids.filter((p) => !isGone(p))
    if (left.length === 0 || Date.now() > until) return left
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
