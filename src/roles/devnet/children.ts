// One devnet role (the server or a relay) as a child process of this same program
// (selfCommand: the binary in a SEA, node + the CLI script otherwise). Its stdin is a
// pipe it watches (MARSHMELLO_PARENT_WATCH), so it stops even if the devnet is
// SIGKILLed; it runs in its own process group, so a terminal's Ctrl-C reaches only
// the devnet, which then stops the children in order. Nothing here restarts a child:
// the devnet does, when asked (index.ts, relay-slots.ts).
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { isSea, selfCommand } from '../common/sea.js'

/**
 * V8 flags for every role the devnet starts: they all share one machine, and with more
 * processes than cores V8's concurrent and parallel GC helper threads cost more CPU than
 * they save (npm run bench on 2 cores: relays ~125 → ~75 µs of CPU per send). The
 * single executable takes no V8 flags on its command line, so its children keep the default.
 */
export const DEVNET_NODE_FLAGS = ['--single-threaded-gc']

export interface ChildExit { code: number | null, signal: NodeJS.Signals | null }

export interface RoleProcess {
  /** "server", "relay1", … */
  role: string
  pid: number
  child: ChildProcess
  /** resolves with the first stdout line matching re; rejects if the child exits first or at the deadline */
  waitForLine: (re: RegExp, deadline: number) => Promise<RegExpMatchArray>
  exited: Promise<ChildExit>
  /** whether it has exited */
  gone: () => boolean
  /** SIGTERM, then SIGKILL after graceMs */
  stop: (graceMs: number) => Promise<ChildExit>
  /** its last stderr lines, for error messages */
  recentStderr: () => string[]
}

/** how the devnet starts one role: `marshmello ARGS` as a child (spawnRole) unless a caller brings its own */
export type SpawnRole = (role: string, args: string[], onStderrLine: (role: string, line: string) => void) => RoleProcess

export interface SpawnOptions {
  /** the program to run (default selfCommand(): this same program) */
  command?: { file: string, args: string[] }
  /** more node flags, after DEVNET_NODE_FLAGS (the bench: --cpu-prof …) */
  nodeArgs?: string[]
  /** set in the child's environment after ours is filtered */
  env?: Record<string, string>
  /** a command the child runs under, which then execs it (tests: `ip netns exec NS`, a role on a host of its own) */
  prefix?: string[]
}

/** the environment of a child: ours without MARSHMELLO_* settings (the devnet passes flags), plus the parent watch */
function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('MARSHMELLO_') && k !== 'MARSHMELLO_LOG_LEVEL') continue
    env[k] = v
  }
  Object.assign(env, extra)
  env.MARSHMELLO_PARENT_WATCH = '1'
  return env
}

export function spawnRole (role: string, args: string[], onStderrLine: (role: string, line: string) => void, o: SpawnOptions = {}): RoleProcess {
  const self = o.command ?? selfCommand()
  const sea = isSea() && !o.command
  const flags = sea ? [] : [...DEVNET_NODE_FLAGS, ...(o.nodeArgs ?? [])].filter((f) => !self.args.includes(f))
  const argv = [self.file, ...flags, ...self.args, ...args]
  const [file, ...rest] = [...(o.prefix ?? []), ...argv]
  const child = spawn(file, rest, { env: childEnv(o.env), stdio: ['pipe', 'pipe', 'pipe'], detached: true })
  // a failed spawn (e.g. the executable vanished) surfaces as an exit below
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', () => { if (child.pid === undefined) resolve({ code: null, signal: null }) })
  })
  let isGone = false
  void exited.then(() => { isGone = true })
  child.stdin!.on('error', () => { /* the child is gone; its exit is reported */ })

  const stdoutLines: string[] = []
  const waiters: { re: RegExp, resolve: (m: RegExpMatchArray) => void }[] = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdoutLines.push(line)
    for (const w of [...waiters]) {
      const m = line.match(w.re)
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) }
    }
  })
  const stderrTail: string[] = []
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrTail.push(line)
    if (stderrTail.length > 20) stderrTail.shift()
    onStderrLine(role, line)
  })

  const waitForLine = (re: RegExp, deadline: number): Promise<RegExpMatchArray> => new Promise((resolve, reject) => {
    for (const line of stdoutLines) {
      const m = line.match(re)
      if (m) return resolve(m)
    }
    const timer = setTimeout(() => reject(new Error(`${role} did not start within the deadline`)), Math.max(0, deadline - Date.now()))
    waiters.push({ re, resolve: (m) => { clearTimeout(timer); resolve(m) } })
    void exited.then((e) => {
      clearTimeout(timer)
      const tail = stderrTail.slice(-5).join('\n  ')
      reject(new Error(`${role} exited during start-up (${describeExit(e)})${tail ? `:\n  ${tail}` : ''}`))
    })
  })

  const stop = async (graceMs: number): Promise<ChildExit> => {
    if (!isGone) {
      try { child.kill('SIGTERM') } catch { /* already gone */ }
      const timer = setTimeout(() => { if (!isGone) { try { child.kill('SIGKILL') } catch { /* gone */ } } }, graceMs)
      const e = await exited
      clearTimeout(timer)
      return e
    }
    return exited
  }

  return {
    role,
    pid: child.pid ?? -1,
    child,
    waitForLine,
    exited,
    gone: () => isGone,
    stop,
    recentStderr: () => [...stderrTail],
  }
}

export function describeExit (e: ChildExit): string {
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`
}
