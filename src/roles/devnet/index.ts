// `marshmello devnet`: the server and N relays as child processes on
// loopback, ready once the signed consensus lists every relay (at the server and in
// every relay's cached copy, which clients bootstrap from); then devnet.json
// (what `marshmello chat --devnet DIR` reads) and periodic counts from each role's /metrics (its operator token).
// A child that dies is reported and ends the devnet: nothing is restarted (tests
// that kill relays on purpose say keepGoing). Printing is the command's job
// (command.ts); this module only emits events. Tests and the bench start their
// networks with this same function (test/helpers/network.ts, bench/lib/network.ts).
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describeExit, spawnRole, type ChildExit, type RoleProcess, type SpawnRole } from './children.js'
import { waitForConsensus } from './consensus-wait.js'
import { DEVNET_FILE, writeDevnetFile, type DevnetInfo, type RelayInfo } from './devnet-file.js'
import { collectStats, type DevnetStats } from './stats.js'

export { DEVNET_FILE, writeDevnetFile, collectStats, describeExit }
export type { DevnetInfo, RelayInfo, DevnetStats }
export type { RoleInfo } from './devnet-file.js'

export interface DevnetInit {
  /** number of relays (default 5) */
  relays: number
  /** where data dirs and devnet.json live */
  dir: string
  /** the server listens on portBase, relay i on portBase + i; 0: every role on a port the system picks */
  portBase: number
  host: string
  /** relay i (1-based) listens on relayHosts[i - 1] instead of host (tests: distinct loopback addresses) */
  relayHosts?: string[]
  /** more `marshmello server` flags (stores, --direct-api, --trace-peers, …) */
  serverArgs?: string[]
  /** more `marshmello relay` flags for relay i (1-based) */
  relayArgs?: (i: number) => string[]
  /** a child that dies is reported and the others keep running (tests that kill relays); default false: the devnet stops */
  keepGoing?: boolean
  /** how long start-up may take, in ms (default 30 s) */
  readyTimeoutMs?: number
  /** how long a child gets between SIGTERM and SIGKILL (default 5 s) */
  stopGraceMs?: number
  /** demo: each relay appends its per-cell trace (addresses, sizes, cell bytes) to DIR/trace/relayN.jsonl */
  trace?: boolean
}

export interface ChildExitEvent { role: string, pid: number, code: number | null, signal: string | null, expected: boolean }

export interface DevnetComponents {
  /** a child's stderr line */
  onChildLine: (role: string, line: string) => void
  /** a child exited; expected is false unless the devnet was stopping */
  onChildExit: (e: ChildExitEvent) => void
  /** starts one role (default: this same program as a child, spawnRole) */
  spawn?: SpawnRole
}

export interface Devnet {
  info: DevnetInfo
  /** the children: the server, then relay 1 … N */
  processes: { server: RoleProcess, relays: RoleProcess[] }
  stats: () => Promise<DevnetStats>
  /** stops every child (SIGTERM, then SIGKILL after the grace period) and removes devnet.json */
  stop: () => Promise<void>
  /** resolves when a child dies unexpectedly (unless keepGoing, the devnet is then already stopping) */
  failed: Promise<ChildExitEvent>
}

const SERVER_LINE = /^server \(all\) listening on (https:\/\/\S+)$/
const DIRKEY_LINE = /^directory key ([0-9a-f]{64})$/
const FINAL_HOP_LINE = /^final hop identity ([0-9a-f]{64})$/
const RELAY_LINE = /^relay ([0-9a-f]{64}) listening on (https:\/\/\S+)/

function isAlive (pid: unknown): boolean {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return false
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/** refuses to start over a devnet that still runs in the same dir */
function checkNotRunning (file: string): void {
  if (!existsSync(file)) return
  let prev: Partial<DevnetInfo>
  try { prev = JSON.parse(readFileSync(file, 'utf8')) } catch { return }
  if (isAlive(prev.pid) && isAlive(prev.server?.pid)) {
    throw new Error(`a devnet already runs in ${prev.dir ?? file} (pid ${prev.pid}); stop it first, or remove ${file} if that is wrong`)
  }
}

const portOf = (url: string): number => Number(new URL(url).port)

export async function startDevnet (init: DevnetInit, c: DevnetComponents): Promise<Devnet> {
  const n = init.relays
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error('--relays must be an integer from 1 to 50')
  if (!Number.isInteger(init.portBase) || init.portBase < 0 || init.portBase + n > 65535) throw new Error(`--port-base must leave room for ${n + 1} ports below 65536`)
  const dir = resolve(init.dir)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, DEVNET_FILE)
  checkNotRunning(file)

  const deadline = Date.now() + (init.readyTimeoutMs ?? 30_000)
  const grace = init.stopGraceMs ?? 5000
  const children: RoleProcess[] = []
  const spawn = c.spawn ?? spawnRole
  let stopping = false
  let ready = false
  let died: ChildExitEvent | undefined
  let resolveFailed!: (e: ChildExitEvent) => void
  const failed = new Promise<ChildExitEvent>((resolve) => { resolveFailed = resolve })

  const stopAll = async (): Promise<void> => {
    stopping = true
    await Promise.all(children.map((ch) => ch.stop(grace)))
  }
  const watch = (ch: RoleProcess) => {
    void ch.exited.then((e: ChildExit) => {
      const ev: ChildExitEvent = { role: ch.role, pid: ch.pid, code: e.code, signal: e.signal, expected: stopping }
      c.onChildExit(ev)
      if (stopping) return
      died ??= ev
      // during start-up any death aborts; once ready, keepGoing leaves the others running
      if (!ready || !init.keepGoing) stopping = true
      resolveFailed(ev)
    })
  }
  const launch = (role: string, args: string[]): RoleProcess => {
    const ch = spawn(role, args, c.onChildLine)
    children.push(ch)
    watch(ch)
    return ch
  }

  try {
    /* the server first: relays need its directory key */
    const serverDir = join(dir, 'server')
    const server = launch('server', ['server', '--port', String(init.portBase), '--host', init.host, '--data-dir', serverDir, ...(init.serverArgs ?? [])])
    const [serverUrl, directoryKey, finalHop] = await Promise.all([
      server.waitForLine(SERVER_LINE, deadline).then((m) => m[1]),
      server.waitForLine(DIRKEY_LINE, deadline).then((m) => m[1]),
      server.waitForLine(FINAL_HOP_LINE, deadline).then((m) => m[1]),
    ])

    const relayProcs = Array.from({ length: n }, (_, k) => {
      const i = k + 1
      const port = init.portBase === 0 ? 0 : init.portBase + i
      const host = init.relayHosts?.[k] ?? init.host
      const dataDir = join(dir, `relay-${i}`)
      const trace = init.trace ? ['--trace', join(dir, 'trace', `relay${i}.jsonl`), '--trace-cells'] : []
      if (init.trace) mkdirSync(join(dir, 'trace'), { recursive: true, mode: 0o700 })
      const ch = launch(`relay${i}`, ['relay', '--port', String(port), '--host', host, '--data-dir', dataDir,
        '--directory', serverUrl, '--directory-key', directoryKey, '--nickname', `relay${i}`, ...trace, ...(init.relayArgs?.(i) ?? [])])
      return { ch, i, host, dataDir }
    })
    const relays: RelayInfo[] = await Promise.all(relayProcs.map(async ({ ch, i, host, dataDir }) => {
      const m = await ch.waitForLine(RELAY_LINE, deadline)
      return { nickname: `relay${i}`, url: m[2], host, port: portOf(m[2]), pid: ch.pid, fingerprint: m[1], dataDir }
    }))

    await waitForConsensus({ directory: serverUrl, relays, directoryKey, deadline, aborted: () => died !== undefined })
    ready = true

    const info: DevnetInfo = {
      version: 1,
      dir,
      host: init.host,
      directoryKey,
      server: { url: serverUrl, host: init.host, port: portOf(serverUrl), pid: server.pid, fingerprint: finalHop, dataDir: serverDir },
      relays,
      startedAt: Date.now(),
      pid: process.pid,
    }
    writeDevnetFile(dir, info)

    let stopped: Promise<void> | undefined
    const stop = () => {
      stopped ??= stopAll().finally(() => {
        try { unlinkSync(file) } catch { /* already gone */ }
      })
      return stopped
    }
    void failed.then(() => { if (stopping) return stop() })
    return { info, processes: { server, relays: relayProcs.map((r) => r.ch) }, stats: () => collectStats(info), stop, failed }
  } catch (err) {
    // a child that died already said why; the others must not outlive a failed start
    await stopAll()
    throw err
  }
}
