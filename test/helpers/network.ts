// The one test network: `startNetwork` runs the devnet's own start-up code
// (src/roles/devnet/index.ts: a `marshmello server` process and N relay processes,
// the consensus awaited at the server and in every relay's cached copy, DIR/devnet.json
// for `--devnet DIR`) with each relay on its own loopback address (127.0.0.11, .12, …
// unless told) and every child's output kept for assertions. Also the pieces for
// networks the devnet does not build (a lone server; split mode's relays).
import { verifyConsensus, type Consensus } from '../../src/onion/directory/consensus.js'
import { fetchDocument } from '../../src/roles/common/signed-fetch.js'
import { spawnRole, type RoleProcess } from '../../src/roles/devnet/children.js'
import { startDevnet, type DevnetInfo, type RelayInfo as DevnetRelay, type RoleInfo } from '../../src/roles/devnet/index.js'
import { BIN, procOf, run, tmp, type Proc } from './net.js'

export { waitForConsensus } from '../../src/roles/devnet/consensus-wait.js'
export { writeDevnetFile } from '../../src/roles/devnet/devnet-file.js'

/** a lone `marshmello server` process (startServerProc) */
export interface ServerInfo {
  url: string
  host: string
  port: number
  proc: Proc
  dataDir: string
  directoryKey: string
  /** the final hop's identity fingerprint (absent for `--service directory`) */
  fingerprint?: string
  directApiUrl?: string
}

/** one relay process: where it listens and its output */
export interface RelayInfo {
  nickname: string
  url: string
  host: string
  port: number
  fingerprint: string
  dataDir: string
  proc: Proc
}

export interface NetServer extends RoleInfo { proc: Proc }
export interface NetRelay extends DevnetRelay { proc: Proc }

export interface Network {
  dir: string
  directoryKey: string
  /** what DIR/devnet.json holds */
  info: DevnetInfo
  server: NetServer
  relays: NetRelay[]
  /** the server's current consensus, verified against the directory key */
  consensus: () => Promise<Consensus>
  stop: () => Promise<void>
}

export interface NetworkInit {
  relays?: number
  dir?: string
  /** more server flags: stores (--users URL, --messages URL), --relay-stale, --trace-peers, … */
  serverArgs?: string[]
  /** relay i (1-based) listens on relayHosts[i - 1] (default relayHost(i - 1)) */
  relayHosts?: string[]
  /** more flags for relay i (1-based) */
  relayArgs?: (i: number) => string[]
  /** set in every child's environment */
  env?: Record<string, string>
}

/** SIGTERM, then SIGKILL if it has not exited within `ms` */
export async function stopProc (p: Proc, ms = 3000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return
  const timer = setTimeout(() => p.child.kill('SIGKILL'), ms)
  await p.kill('SIGTERM')
  clearTimeout(timer)
}

/** starts `marshmello server ARGS` and parses what it prints */
export async function startServerProc (o: { dataDir: string, host?: string, args?: string[], env?: Record<string, string> }): Promise<ServerInfo> {
  const host = o.host ?? '127.0.0.1'
  const proc = run(['server', '--port', '0', '--host', host, '--data-dir', o.dataDir, ...(o.args ?? [])], { env: o.env })
  try {
    const m = await proc.waitFor(/listening on (https?):\/\/([^:\s]+):(\d+)/)
    await proc.waitFor(/data dir /)
    // the rest of the banner is one write: once "data dir" is there, every line is
    const out = proc.stdout()
    return {
      url: `${m[1]}://${m[2]}:${m[3]}`,
      host: m[2],
      port: Number(m[3]),
      proc,
      dataDir: o.dataDir,
      directoryKey: out.match(/directory key ([0-9a-f]{64})/)?.[1] ?? '',
      fingerprint: out.match(/final hop identity ([0-9a-f]{64})/)?.[1],
      directApiUrl: out.match(/direct API .* on (http:\/\/\S+)/)?.[1],
    }
  } catch (err) {
    await stopProc(proc)
    throw err
  }
}

/** starts one relay registered with `directory`; resolves once it listens */
export async function startDirectoryRelay (o: { host: string, directory: string, directoryKey: string, dataDir: string, nickname: string, args?: string[], env?: Record<string, string> }): Promise<RelayInfo> {
  const proc = run(['relay', '--port', '0', '--host', o.host, '--data-dir', o.dataDir, '--directory', o.directory, '--directory-key', o.directoryKey, '--nickname', o.nickname, ...(o.args ?? [])], { env: o.env })
  try {
    const m = await proc.waitFor(/relay ([0-9a-f]{64}) listening on (https:\/\/([^:\s]+):(\d+))/)
    return { nickname: o.nickname, url: m[2], host: m[3], port: Number(m[4]), fingerprint: m[1], dataDir: o.dataDir, proc }
  } catch (err) {
    await stopProc(proc)
    throw err
  }
}

export const relayHost = (i: number): string => `127.0.0.${11 + i}`

/** starts a server and `relays` relays (default 3) on distinct loopback addresses; see the file comment */
export async function startNetwork (init: NetworkInit = {}): Promise<Network> {
  const n = init.relays ?? 3
  const dir = init.dir ?? tmp('mm-net-')
  const procs = new Map<string, Proc>()
  // the built CLI outside tap's loaders; each child's output is kept from its first byte
  const spawn = (role: string, args: string[], onLine: (role: string, line: string) => void): RoleProcess => {
    const rp = spawnRole(role, args, onLine, { command: { file: process.execPath, args: [BIN] }, env: { NODE_OPTIONS: '', ...init.env } })
    procs.set(role, procOf(rp.child))
    return rp
  }
  const devnet = await startDevnet({
    relays: n,
    dir,
    portBase: 0,
    host: '127.0.0.1',
    relayHosts: init.relayHosts ?? Array.from({ length: n }, (_v, i) => relayHost(i)),
    serverArgs: init.serverArgs,
    relayArgs: init.relayArgs,
    keepGoing: true,
    stopGraceMs: 3000,
  }, { spawn, onChildLine: () => {}, onChildExit: () => {} })
  const { info } = devnet
  const consensus = async (): Promise<Consensus> => {
    const res = await fetchDocument(`${info.server.url}/v1/directory/consensus`)
    if (res.status !== 200) throw new Error(`consensus: HTTP ${res.status}`)
    return verifyConsensus(JSON.parse(res.text), info.directoryKey, Date.now())
  }
  return {
    dir: info.dir,
    directoryKey: info.directoryKey,
    info,
    server: { ...info.server, proc: procs.get('server')! },
    relays: info.relays.map((r) => ({ ...r, proc: procs.get(r.nickname)! })),
    consensus,
    stop: devnet.stop,
  }
}
