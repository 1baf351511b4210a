// `marshmello devnet` (DESIGN §8): the server and N relays as child processes on
// loopback, ready once the signed consensus lists every relay (at the server and in
// every relay's cached copy, which clients bootstrap from); then devnet.json
// (what `marshmello chat --devnet DIR` reads) and periodic counts from /healthz.
// A child that dies is reported and ends the devnet: nothing is restarted. Printing
// is the command's job (command.ts); this module only emits events.
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { verifyConsensus } from '../../onion/directory/consensus.js'
import { fetchDocument } from '../common/signed-fetch.js'
import { describeExit, spawnRole, type ChildExit, type RoleProcess } from './children.js'

export interface DevnetInit {
  /** number of relays (default 5) */
  relays: number
  /** where data dirs and devnet.json live */
  dir: string
  /** the server listens on portBase, relay i on portBase + i */
  portBase: number
  host: string
  /** how long start-up may take, in ms (default 30 s) */
  readyTimeoutMs?: number
  /** how long a child gets between SIGTERM and SIGKILL (default 5 s) */
  stopGraceMs?: number
  /** demo: each relay appends its per-cell trace (addresses, sizes, cell bytes) to DIR/trace/relayN.jsonl */
  trace?: boolean
}

export interface RoleInfo { url: string, host: string, port: number, pid: number, fingerprint: string, dataDir: string }
export interface RelayInfo extends RoleInfo { nickname: string }

/** devnet.json */
export interface DevnetInfo {
  version: 1
  dir: string
  host: string
  directoryKey: string
  server: RoleInfo
  relays: RelayInfo[]
  startedAt: number
  /** pid of the devnet process itself */
  pid: number
}

export interface DevnetStats {
  at: number
  users: number
  messages: number
  /** circuits the server (final hop) holds */
  circuits: number
  /** circuits held by relays, summed */
  relayCircuits: number
  relaysListed: number
  circuitsServed: number
  requestsServed: number
  /** roles whose /healthz did not answer */
  unreachable: string[]
}

export interface ChildExitEvent { role: string, pid: number, code: number | null, signal: string | null, expected: boolean }

export interface DevnetComponents {
  /** a child's stderr line */
  onChildLine: (role: string, line: string) => void
  /** a child exited; expected is false unless the devnet was stopping */
  onChildExit: (e: ChildExitEvent) => void
}

export interface Devnet {
  info: DevnetInfo
  stats: () => Promise<DevnetStats>
  /** stops every child (SIGTERM, then SIGKILL after the grace period) and removes devnet.json */
  stop: () => Promise<void>
  /** resolves when a child dies unexpectedly (the devnet is then already stopping) */
  failed: Promise<ChildExitEvent>
}

export const DEVNET_FILE = 'devnet.json'

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

/** atomic replace (write, then rename), mode 0644: nothing secret is in it */
export function writeDevnetFile (dir: string, info: DevnetInfo): string {
  const file = join(dir, DEVNET_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o644 })
  chmodSync(tmp, 0o644) // the umask may have narrowed it
  renameSync(tmp, file)
  return file
}

export async function startDevnet (init: DevnetInit, c: DevnetComponents): Promise<Devnet> {
  const n = init.relays
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error('--relays must be an integer from 1 to 50')
  if (!Number.isInteger(init.portBase) || init.portBase < 1 || init.portBase + n > 65535) throw new Error(`--port-base must leave room for ${n + 1} ports below 65536`)
  const dir = resolve(init.dir)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, DEVNET_FILE)
  checkNotRunning(file)

  const deadline = Date.now() + (init.readyTimeoutMs ?? 30_000)
  const grace = init.stopGraceMs ?? 5000
  const children: RoleProcess[] = []
  let stopping = false
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
      if (!stopping) {
        stopping = true
        resolveFailed(ev)
      }
    })
  }
  const launch = (role: string, args: string[]): RoleProcess => {
    const ch = spawnRole(role, args, c.onChildLine)
    children.push(ch)
    watch(ch)
    return ch
  }

  try {
    /* the server first: relays need its directory key */
    const serverDir = join(dir, 'server')
    const server = launch('server', ['server', '--port', String(init.portBase), '--host', init.host, '--data-dir', serverDir])
    const [serverUrl, directoryKey, finalHop] = await Promise.all([
      server.waitForLine(SERVER_LINE, deadline).then((m) => m[1]),
      server.waitForLine(DIRKEY_LINE, deadline).then((m) => m[1]),
      server.waitForLine(FINAL_HOP_LINE, deadline).then((m) => m[1]),
    ])

    const relayProcs = Array.from({ length: n }, (_, k) => {
      const i = k + 1
      const port = init.portBase + i
      const dataDir = join(dir, `relay-${i}`)
      const trace = init.trace ? ['--trace', join(dir, 'trace', `relay${i}.jsonl`), '--trace-cells'] : []
      if (init.trace) mkdirSync(join(dir, 'trace'), { recursive: true, mode: 0o700 })
      const ch = launch(`relay${i}`, ['relay', '--port', String(port), '--host', init.host, '--data-dir', dataDir,
        '--directory', serverUrl, '--directory-key', directoryKey, '--nickname', `relay${i}`, ...trace])
      return { ch, i, port, dataDir }
    })
    const relays: RelayInfo[] = await Promise.all(relayProcs.map(async ({ ch, i, port, dataDir }) => {
      const m = await ch.waitForLine(RELAY_LINE, deadline)
      return { nickname: `relay${i}`, url: m[2], host: init.host, port, pid: ch.pid, fingerprint: m[1], dataDir }
    }))

    await waitForConsensus(serverUrl, relays, directoryKey, deadline, () => stopping)

    const info: DevnetInfo = {
      version: 1,
      dir,
      host: init.host,
      directoryKey,
      server: { url: serverUrl, host: init.host, port: init.portBase, pid: server.pid, fingerprint: finalHop, dataDir: serverDir },
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
    void failed.then(() => stop())
    return { info, stats: () => collectStats(info), stop, failed }
  } catch (err) {
    // a child that died already said why; the others must not outlive a failed start
    await stopAll()
    throw err
  }
}

/**
 * Waits until the server's consensus and every relay's cached copy (what clients
 * bootstrap from) verify against the directory key and list every relay.
 */
async function waitForConsensus (serverUrl: string, relays: RelayInfo[], directoryKey: string, deadline: number, aborted: () => boolean): Promise<void> {
  const want = relays.map((r) => r.fingerprint)
  const sources = [{ name: 'server', url: `${serverUrl}/v1/directory/consensus` }, ...relays.map((r) => ({ name: r.nickname, url: `${r.url}/consensus` }))]
  const listed = new Map<string, number>()
  let lastError = ''
  const pending = new Set(sources.map((s) => s.name))
  while (Date.now() < deadline) {
    if (aborted()) throw new Error('a child exited while the devnet was starting')
    await Promise.all(sources.filter((s) => pending.has(s.name)).map(async (s) => {
      try {
        const res = await fetchDocument(s.url)
        if (res.status !== 200) { lastError = `${s.name}: HTTP ${res.status}`; return }
        const consensus = verifyConsensus(JSON.parse(res.text), directoryKey, Date.now())
        const have = new Set(consensus.relays.map((r) => r.fingerprint))
        const n = want.filter((f) => have.has(f)).length
        listed.set(s.name, n)
        if (n === want.length) pending.delete(s.name)
      } catch (err) {
        lastError = `${s.name}: ${(err as Error).message}`
      }
    }))
    if (pending.size === 0) return
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  const behind = [...pending].map((name) => `${name} lists ${listed.get(name) ?? 0}`).join(', ')
  throw new Error(`the consensus did not list all ${want.length} relays in time (${behind})${lastError ? `; last error: ${lastError}` : ''}`)
}

async function health (url: string): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetchDocument(`${url}/healthz`)
    return res.status === 200 ? JSON.parse(res.text) : null
  } catch {
    return null
  }
}

const num = (v: unknown): number => typeof v === 'number' && Number.isFinite(v) ? v : 0

export async function collectStats (info: DevnetInfo): Promise<DevnetStats> {
  const [server, ...relays] = await Promise.all([health(info.server.url), ...info.relays.map((r) => health(r.url))])
  const unreachable: string[] = []
  if (!server) unreachable.push('server')
  relays.forEach((h, i) => { if (!h) unreachable.push(info.relays[i].nickname) })
  return {
    at: Date.now(),
    users: num(server?.users),
    messages: num(server?.messages),
    circuits: num(server?.circuits),
    relayCircuits: relays.reduce((s, h) => s + num(h?.circuits), 0),
    relaysListed: num(server?.relays),
    circuitsServed: num(server?.circuitsServed),
    requestsServed: num(server?.requestsServed),
    unreachable,
  }
}

export { describeExit }
