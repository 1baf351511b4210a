// Child processes of the bench: the server (final hop + API + directory) and relays,
// started from the built CLI on loopback. Every process started is registered here
// and stopped by stopAll(), which run.ts calls in a finally block (and on signals).
// Also reads a process's CPU time and RSS from /proc.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEVNET_NODE_FLAGS } from '../../src/roles/devnet/children.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = join(ROOT, 'build', 'cli.js')

export interface Child {
  name: string
  child: ChildProcess
  pid: number
  output: () => string
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpMatchArray>
  stop: () => Promise<void>
}

const running = new Set<Child>()
/** networks started by the devnet's code (bench/lib/network.ts): stopped with the children */
const stoppers = new Set<() => Promise<void>>()

/** stopAll() also calls `stop` (a devnet's; its children watch our stdin, so they also die with us) */
export function onStop (stop: () => Promise<void>): void {
  stoppers.add(stop)
}

export const tmp = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix))

/** runs `node NODEARGS build/cli.js ARGS` (node args such as --cpu-prof, which node refuses in NODE_OPTIONS) */
/** every role runs as the devnet runs it (DEVNET_NODE_FLAGS: single-threaded GC), plus `nodeArgs` */
export function start (name: string, args: string[], nodeArgs: string[] = []): Child {
  const child = spawn(process.execPath, [...DEVNET_NODE_FLAGS, ...nodeArgs, CLI, ...args], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const waiters: { re: RegExp, resolve: (m: RegExpMatchArray) => void }[] = []
  const onData = (d: Buffer) => {
    if (out.length < 1 << 20) out += d.toString()
    for (const w of [...waiters]) {
      const m = out.match(w.re)
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) }
    }
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const c: Child = {
    name,
    child,
    pid: child.pid!,
    output: () => out,
    waitFor: (re, ms = 30_000) => new Promise((resolve, reject) => {
      const m = out.match(re)
      if (m) return resolve(m)
      const timer = setTimeout(() => reject(new Error(`${name}: timed out waiting for ${re}; output:\n${out.slice(-2000)}`)), ms)
      waiters.push({ re, resolve: (x) => { clearTimeout(timer); resolve(x) } })
      exited.then(() => { clearTimeout(timer); reject(new Error(`${name} exited before ${re}; output:\n${out.slice(-2000)}`)) })
    }),
    stop: async () => {
      running.delete(c)
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const killed = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(killed)
    },
  }
  running.add(c)
  return c
}

/** stops every child still running (bounded: SIGKILL after 5 s each) */
export async function stopAll (): Promise<void> {
  const stops = [...stoppers]
  stoppers.clear()
  await Promise.allSettled([...running].map((c) => c.stop()).concat(stops.map((s) => s())))
}

/** synchronous last resort for process exit paths */
export function killAllSync (): void {
  for (const c of running) { try { c.child.kill('SIGKILL') } catch {} }
}

const TICKS = 100 // USER_HZ on Linux

/** user+system CPU seconds of a process so far */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields after "(comm)": state is index 0, utime is field 14 → index 11, stime → 12
  return (Number(f[11]) + Number(f[12])) / TICKS
}

/** resident set size in bytes */
export function rssBytes (pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)
  return m ? Number(m[1]) * 1024 : NaN
}
