// `marshmello devnet`: the server and N relays as child processes on
// loopback, ready once the signed consensus lists every relay (at the server and in
// every relay's cached copy, which clients bootstrap from); the server may also run
// as split services, or not at all (relays reading a consensus file the devnet signs,
// around a final hop the caller runs: services.ts); then devnet.json
// (what `marshmello chat --devnet DIR` reads) and periodic counts from each role's /metrics (its operator token).
// Once ready, a relay that dies is reported; with keepRelays the others keep
// running, and restartRelay() (or restartRelayAfterMs) starts it again with its
// identity and address. The server's death always ends the devnet (unless keepGoing,
// for tests). Printing is the command's job (command.ts); this module only emits
// events. Tests and the bench start every network of processes with this same
// function (test/helpers/network.ts, bench/lib/network.ts, bench/lib/echo-network.ts).
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describeExit, spawnRole, type ChildExit, type RoleProcess, type SpawnRole } from './children.js'
import { waitForConsensus } from './consensus-wait.js'
import { DEVNET_FILE, writeDevnetFile, type DevnetInfo, type DevnetMode, type RelayInfo } from './devnet-file.js'
import { isAlive } from './restart-request.js'
import { relayArgs, relayListening, relaySlots, startRelays, waitListed, type RelaySlot } from './relay-slots.js'
import { startDirectorySide, type FinalHopInit, type SplitService } from './services.js'
import { collectStats, type DevnetStats } from './stats.js'
import { fetchDocument } from '../common/signed-fetch.js'
import { verifyDescriptor, type Descriptor } from '../../onion/directory/descriptor.js'

export { DEVNET_FILE, writeDevnetFile, collectStats, describeExit }
export type { DevnetInfo, DevnetMode, RelayInfo, DevnetStats, FinalHopInit, SplitService }
export type { RoleInfo, DevnetServices } from './devnet-file.js'

export interface DevnetInit {
  /** number of relays (default 5) */
  relays: number
  /** where data dirs and devnet.json live */
  dir: string
  /** the server listens on portBase, relay i on portBase + i; 0: every role on a port the system picks */
  portBase: number
  host: string
  /** the server as one process (all, default), as split services, or none (file: relays read a consensus file the devnet signs; needs finalHop) */
  mode?: DevnetMode
  /** file mode: the final hop the consensus lists (the caller runs it) */
  finalHop?: FinalHopInit
  /**
   * all and split modes: how many directory authorities sign the consensus: the server's (or
   * the directory service's) and this many less one `server --service directory` processes
   * (default 1; `marshmello devnet`: 3).
   * With a port base they listen on portBase + relays + 1 …
   */
  authorities?: number
  /** split mode: more flags for one service (serverArgs go to the gateway) */
  serviceArgs?: Partial<Record<SplitService, string[]>>
  /** relay i (1-based) listens on relayHosts[i - 1] instead of host (tests: distinct loopback addresses) */
  relayHosts?: string[]
  /** more `marshmello server` flags (stores, --direct-api, --trace-peers, …); the gateway's in split mode */
  serverArgs?: string[]
  /** more `marshmello relay` flags for relay i (1-based) */
  relayArgs?: (i: number) => string[]
  /** once ready, a relay that dies is reported and the others keep running (`marshmello devnet`); default false: the devnet stops */
  keepRelays?: boolean
  /** with keepRelays: a relay that dies after it was listed is started again after this many ms (default: only restartRelay() does) */
  restartRelayAfterMs?: number
  /** no death stops the devnet once ready, not even the server's (tests that kill roles); it is still reported */
  keepGoing?: boolean
  /** how long start-up (and a relay's restart) may take, in ms (default 30 s, plus 2 s per relay beyond 5, plus 15 s in split mode) */
  readyTimeoutMs?: number
  /** how long a child gets between SIGTERM and SIGKILL (default 5 s) */
  stopGraceMs?: number
  /** demo: each relay appends its per-cell trace (addresses, sizes, cell bytes) to DIR/trace/relayN.jsonl */
  trace?: boolean
}

export interface ChildExitEvent {
  role: string
  pid: number
  code: number | null
  signal: string | null
  /** false unless the devnet was stopping (or stopped the child itself) */
  expected: boolean
  /** a relay the devnet starts again after this many ms */
  restartInMs?: number
}

/** a relay's restart: back and listed in the consensus again, or why not */
export type RestartEvent = { role: string, ok: true, pid: number, url: string } | { role: string, ok: false, message: string }

export interface DevnetComponents {
  /** a child's stderr line */
  onChildLine: (role: string, line: string) => void
  /** a child exited */
  onChildExit: (e: ChildExitEvent) => void
  /** a relay's restart ended (restartRelay or restartRelayAfterMs) */
  onRestart?: (e: RestartEvent) => void
  /** starts one role (default: this same program as a child, spawnRole) */
  spawn?: SpawnRole
}

export interface Devnet {
  /** what devnet.json holds (a restarted relay's new pid included) */
  info: DevnetInfo
  /** the children: the final hop's process (the server or the gateway; none in file mode), every service by role, relay 1 … N (a restarted relay's new process in its place) */
  processes: { server?: RoleProcess, services: Partial<Record<string, RoleProcess>>, relays: RoleProcess[] }
  /** file mode: signs a consensus listing `relays` and `server` (default: the final hop) and resolves once every running relay serves it */
  publish?: (relays: Descriptor[], server?: Descriptor | null) => Promise<void>
  /** file mode: each relay's signed descriptor, as its /descriptor served it at start-up */
  descriptors?: Descriptor[]
  stats: () => Promise<DevnetStats>
  /** the relays that are not running (died, or died again while restarting) */
  downRelays: () => string[]
  /** starts a relay that is down again, same identity and address; resolves once the consensus lists it */
  restartRelay: (nickname: string) => Promise<RelayInfo>
  /** stops every child (SIGTERM, then SIGKILL after the grace period) and removes devnet.json */
  stop: () => Promise<void>
  /** resolves when a death stops the devnet (the server's; any role's without keepRelays); with keepGoing, on any role's death */
  failed: Promise<ChildExitEvent>
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

export async function startDevnet (init: DevnetInit, c: DevnetComponents): Promise<Devnet> {
  const n = init.relays
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error('--relays must be an integer from 1 to 50')
  // ports above the relays: the extra authorities (all mode), or every authority when there are several (split mode)
  const k = Math.max(1, init.authorities ?? 1)
  const extra = init.mode === 'file' || k === 1 ? 0 : init.mode === 'split' ? k : k - 1
  if (!Number.isInteger(init.portBase) || init.portBase < 0 || init.portBase + n + extra > 65535) throw new Error(`--port-base must leave room for ${n + extra + 1} ports below 65536`)
  const dir = resolve(init.dir)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, DEVNET_FILE)
  checkNotRunning(file)

  // more processes on the same cores take longer to come up (and past 16 relays they start paced)
  // (split mode starts four server processes, one after another, before any relay)
  const readyMs = init.readyTimeoutMs ?? 30_000 + 2000 * Math.max(0, n - 5) + (init.mode === 'split' ? 15_000 : 0)
  const deadline = Date.now() + readyMs
  const grace = init.stopGraceMs ?? 5000
  const children: RoleProcess[] = []
  /** children the devnet stops itself (a restart that was not listed in time): their exit is expected */
  const retiring = new Set<RoleProcess>()
  const spawn = c.spawn ?? spawnRole
  let stopping = false
  let ready = false
  let died: ChildExitEvent | undefined
  let resolveFailed!: (e: ChildExitEvent) => void
  const failed = new Promise<ChildExitEvent>((resolve) => { resolveFailed = resolve })
  const slots: RelaySlot[] = relaySlots({ n, dir, host: init.host, portBase: init.portBase, relayHosts: init.relayHosts, extraArgs: (i) => [
    ...(init.trace ? ['--trace', join(dir, 'trace', `relay${i}.jsonl`), '--trace-cells'] : []), ...(init.relayArgs?.(i) ?? [])] })
  if (init.trace) mkdirSync(join(dir, 'trace'), { recursive: true, mode: 0o700 })
  let restart: (s: RelaySlot) => Promise<RelayInfo> = async () => { throw new Error('the devnet is not ready') }

  const stopAll = async (): Promise<void> => {
    stopping = true
    for (const s of slots) clearTimeout(s.timer)
    await Promise.all(children.map((ch) => ch.stop(grace)))
  }
  const watch = (ch: RoleProcess, slot?: RelaySlot) => {
    void ch.exited.then((e: ChildExit) => {
      const expected = stopping || retiring.delete(ch)
      const current = slot?.ch === ch ? slot : undefined
      const wasUp = current?.status === 'up'
      if (current) current.status = 'down'
      const kept = ready && !expected && current !== undefined && (init.keepRelays === true || init.keepGoing === true)
      const restartInMs = kept && wasUp && init.keepRelays && init.restartRelayAfterMs !== undefined ? init.restartRelayAfterMs : undefined
      c.onChildExit({ role: ch.role, pid: ch.pid, code: e.code, signal: e.signal, expected, ...(restartInMs !== undefined ? { restartInMs } : {}) })
      // an exit the devnet caused, or of a relay's earlier process (a restart replaced it)
      if (expected || (slot !== undefined && current === undefined)) return
      if (kept) {
        if (restartInMs !== undefined) current!.timer = setTimeout(() => { restart(current!).catch(() => { /* reported through onRestart */ }) }, restartInMs)
        return
      }
      died ??= { role: ch.role, pid: ch.pid, code: e.code, signal: e.signal, expected }
      // during start-up any death aborts; once ready, keepGoing leaves the others running
      if (!ready || !init.keepGoing) stopping = true
      resolveFailed(died)
    })
  }
  const launch = (role: string, args: string[], slot?: RelaySlot): RoleProcess => {
    const ch = spawn(role, args, c.onChildLine)
    children.push(ch)
    if (slot) slot.ch = ch
    watch(ch, slot)
    return ch
  }

  try {
    /* the directory side first: relays need its key and where the consensus is */
    const mode = init.mode ?? 'all'
    const side = await startDirectorySide({ mode, dir, host: init.host, portBase: init.portBase, serverArgs: init.serverArgs ?? [], serviceArgs: init.serviceArgs, finalHop: init.finalHop, relays: n, authorities: init.authorities, deadline, launch: (role, args) => launch(role, args) })
    const { directoryKey } = side
    const launchRelay = (s: RelaySlot) => launch(s.nickname, relayArgs(s, side.relayArgs), s)

    const relays: RelayInfo[] = await startRelays(slots, launchRelay, { deadline, aborted: () => died !== undefined })
    let descriptors: Descriptor[] | undefined
    const publish = side.publish
      ? (list: Descriptor[], server: Descriptor | null = init.finalHop!.descriptor) =>
        side.publish!(list, server, slots.filter((s) => s.status === 'up' || s.status === 'starting').map((s) => ({ url: `https://${s.host}:${s.port}` })), Date.now() + readyMs)
      : undefined
    if (publish) {
      // no directory: the devnet lists each relay by the descriptor it serves itself
      descriptors = await Promise.all(relays.map(async (r) => {
        const res = await fetchDocument(`${r.url}/descriptor`)
        if (res.status !== 200) throw new Error(`${r.nickname}: /descriptor answered HTTP ${res.status}`)
        return verifyDescriptor(JSON.parse(res.text), Date.now())
      }))
      await publish(descriptors)
    } else {
      await waitForConsensus({ directory: side.directoryUrl, relays, directoryKey, deadline, aborted: () => died !== undefined })
    }
    for (const s of slots) if (s.status === 'starting') s.status = 'up'
    ready = true

    const info: DevnetInfo = {
      version: 1,
      dir,
      host: init.host,
      directoryKey,
      directoryThreshold: side.directoryThreshold,
      authorities: side.authorities,
      mode,
      ...(side.directoryUrl ? { directoryUrl: side.directoryUrl } : {}),
      ...(side.consensusFile ? { consensusFile: side.consensusFile } : {}),
      server: side.server,
      ...(side.services ? { services: side.services } : {}),
      relays,
      startedAt: Date.now(),
      pid: process.pid,
    }
    writeDevnetFile(dir, info)
    const relayProcs = slots.map((s) => s.ch!)

    restart = async (s: RelaySlot): Promise<RelayInfo> => {
      if (stopping) throw new Error('the devnet is stopping')
      if (s.status !== 'down') throw new Error(`${s.nickname} is ${s.status === 'up' ? `running (pid ${s.ch?.pid})` : 'restarting already'}`)
      clearTimeout(s.timer)
      s.status = 'starting'
      const old = s.ch
      if (old?.gone()) children.splice(children.indexOf(old), 1) // bounded however often it restarts
      const launched = Date.now()
      const ch = launchRelay(s)
      relayProcs[s.i - 1] = ch
      const until = Date.now() + readyMs
      try {
        const r = await relayListening(s, until)
        // listed with the descriptor the new process signed (the votes may carry the old one a period longer)
        // (authorities only: in file mode the devnet's own consensus file keeps the descriptor it listed)
        await waitListed(r, { directory: side.directoryUrl, directoryKey, deadline: until, aborted: () => stopping || ch.gone(), publishedAfter: side.directoryUrl === undefined ? undefined : launched - 1000 })
        if (s.ch !== ch || ch.gone()) throw new Error(`${s.nickname} exited while restarting`)
        s.status = 'up'
        info.relays[s.i - 1] = r
        writeDevnetFile(dir, info)
        c.onRestart?.({ role: s.nickname, ok: true, pid: r.pid, url: r.url })
        return r
      } catch (err) {
        const exitedFirst = ch.gone()
        if (!exitedFirst) { retiring.add(ch); await ch.stop(grace) }
        if (s.ch === ch) s.status = 'down'
        let message = (err as Error).message
        if (exitedFirst && !message.includes('exited during start-up')) message = `it exited before the consensus listed it (${describeExit(await ch.exited)})`
        if (stopping) throw new Error(`${s.nickname} did not come back: the devnet is stopping`, { cause: err })
        c.onRestart?.({ role: s.nickname, ok: false, message })
        throw new Error(`${s.nickname} did not come back: ${message}`, { cause: err })
      }
    }

    let stopped: Promise<void> | undefined
    const stop = () => {
      stopped ??= stopAll().finally(() => {
        try { unlinkSync(file) } catch { /* already gone */ }
      })
      return stopped
    }
    void failed.then(() => { if (stopping) return stop() })
    return {
      info,
      processes: { server: side.serverProc, services: side.procs, relays: relayProcs },
      ...(publish ? { publish, descriptors } : {}),
      stats: () => collectStats(info),
      downRelays: () => slots.filter((s) => s.status === 'down').map((s) => s.nickname),
      restartRelay: (nickname) => {
        const s = slots.find((x) => x.nickname === nickname)
        return s ? restart(s) : Promise.reject(new Error(`no relay named ${nickname} (relay1 … relay${n})`))
      },
      stop,
      failed,
    }
  } catch (err) {
    // a child that died already said why; the others must not outlive a failed start
    await stopAll()
    throw err
  }
}
