// The one test network: `startNetwork` runs the devnet's own start-up code
// (src/roles/devnet/index.ts: a `marshmello server` process, or the four split
// services, or no server at all around a final hop the test runs, and N relay
// processes; the consensus awaited at the directory and in every relay's cached copy;
// DIR/devnet.json for `--devnet DIR`) with each relay on its own loopback address
// (127.0.0.11, .12, … unless told) and every child's output kept for assertions.
// Also a lone server process (startServerProc), which is no network.
import { readFileSync } from 'node:fs'
import { verifyConsensus, type Consensus } from '../../src/onion/directory/consensus.js'
import { fetchDocument } from '../../src/roles/common/signed-fetch.js'
import { spawnRole, type RoleProcess } from '../../src/roles/devnet/children.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { startDevnet, type DevnetInfo, type DevnetMode, type FinalHopInit, type RelayInfo as DevnetRelay, type RoleInfo, type SplitService } from '../../src/roles/devnet/index.js'
import { BIN, procOf, run, tmp, type Proc } from './net.js'

export { waitForConsensus } from '../../src/roles/devnet/consensus-wait.js'

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

export interface NetServer extends RoleInfo { proc: Proc }
export interface NetRelay extends DevnetRelay { proc: Proc }

export interface Network {
  dir: string
  directoryKey: string
  /** what DIR/devnet.json holds */
  info: DevnetInfo
  /** the final hop (file mode: the test's own hop, whose proc is absent) */
  server: NetServer
  /** split mode: each service's process (the gateway is `server`) */
  services: Partial<Record<SplitService, Proc>>
  relays: NetRelay[]
  /** the directory's current consensus, verified against the directory key (file mode: the file's) */
  consensus: () => Promise<Consensus>
  /** file mode: signs a consensus listing `relays` and `server` (default the final hop), resolves once every relay serves it */
  publish: (relays: Descriptor[], server?: Descriptor | null) => Promise<void>
  /** file mode: each relay's descriptor, in order */
  descriptors: Descriptor[]
  /** starts a relay that exited again (same identity, address and flags); resolves once the consensus lists it */
  restartRelay: (nickname: string) => Promise<NetRelay>
  stop: () => Promise<void>
}

export interface NetworkInit {
  relays?: number
  dir?: string
  /** all (default): one server process; split: directory, auth, messages, gateway; file: no server, around finalHop */
  mode?: DevnetMode
  /** directory authorities (default 1: the server's, or the directory service's in split mode; PROTOCOL §7.8) */
  authorities?: number
  /** file mode: the final hop the consensus lists (e.g. startEchoHop in this process) */
  finalHop?: FinalHopInit
  /** split mode: more flags for one service (serverArgs go to the gateway) */
  serviceArgs?: Partial<Record<SplitService, string[]>>
  /** more server flags: stores (--users URL, --messages URL), --relay-stale, --trace-peers, … */
  serverArgs?: string[]
  /** relay i (1-based) listens on relayHosts[i - 1] (default relayHost(i - 1)) */
  relayHosts?: string[]
  /** more flags for relay i (1-based) */
  relayArgs?: (i: number) => string[]
  /** set in every child's environment */
  env?: Record<string, string>
  /** more node flags for every child, after the devnet's own (e.g. '--no-single-threaded-gc': a role as deployed) */
  nodeArgs?: string[]
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
  const proc = run(['server', '--port', '0', '--host', host, '--data-dir', o.dataDir, '--private-network', ...(o.args ?? [])], { env: o.env })
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

export const relayHost = (i: number): string => `127.0.0.${11 + i}`

/** starts a server and `relays` relays (default 3) on distinct loopback addresses; see the file comment */
export async function startNetwork (init: NetworkInit = {}): Promise<Network> {
  const n = init.relays ?? 3
  const dir = init.dir ?? tmp('mm-net-')
  const procs = new Map<string, Proc>()
  // the built CLI outside tap's loaders; each child's output is kept from its first byte
  const spawn = (role: string, args: string[], onLine: (role: string, line: string) => void): RoleProcess => {
    const rp = spawnRole(role, args, onLine, { command: { file: process.execPath, args: [BIN] }, env: { NODE_OPTIONS: '', ...init.env }, nodeArgs: init.nodeArgs })
    procs.set(role, procOf(rp.child))
    return rp
  }
  const devnet = await startDevnet({
    relays: n,
    dir,
    portBase: 0,
    host: '127.0.0.1',
    relayHosts: init.relayHosts ?? Array.from({ length: n }, (_v, i) => relayHost(i)),
    mode: init.mode,
    authorities: init.authorities,
    finalHop: init.finalHop,
    serviceArgs: init.serviceArgs,
    serverArgs: init.serverArgs,
    relayArgs: init.relayArgs,
    keepGoing: true,
    stopGraceMs: 3000,
  }, { spawn, onChildLine: () => {}, onChildExit: () => {} })
  const { info } = devnet
  const consensus = async (): Promise<Consensus> => {
    if (info.consensusFile) return verifyConsensus(JSON.parse(readFileSync(info.consensusFile, 'utf8')), info.directoryKey, Date.now())
    const res = await fetchDocument(`${info.directoryUrl}/v1/directory/consensus`)
    if (res.status !== 200) throw new Error(`consensus: HTTP ${res.status}`)
    return verifyConsensus(JSON.parse(res.text), info.directoryKey, Date.now())
  }
  const services: Partial<Record<SplitService, Proc>> = {}
  for (const name of ['directory', 'auth', 'messages'] as const) { const p = procs.get(name); if (p) services[name] = p }
  return {
    dir: info.dir,
    directoryKey: info.directoryKey,
    info,
    server: { ...info.server, proc: (procs.get('server') ?? procs.get('gateway'))! },
    services,
    relays: info.relays.map((r) => ({ ...r, proc: procs.get(r.nickname)! })),
    consensus,
    publish: devnet.publish ?? (() => Promise.reject(new Error('publish() is for a network without a server (mode: file)'))),
    descriptors: devnet.descriptors ?? [],
    restartRelay: async (nickname) => ({ ...await devnet.restartRelay(nickname), proc: procs.get(nickname)! }),
    stop: devnet.stop,
  }
}
