// The devnet's directory side and final hop, in one of three modes: `all` (one
// `marshmello server` process: every service, the directory, the final hop), `split`
// (the split deployment of docs/ARCHITECTURE.md §8: directory, auth, messages and
// gateway each a `marshmello server --service X` process, sharing an internal token
// and the JWT secret through 0600 files, never argv) and `file` (no server at all:
// relays read DIR/consensus.json, which the devnet signs with a key of its own and
// which lists a final hop the caller runs, e.g. an echo hop for relay tests and the
// bench's onion-only case). Each mode says which flags a relay needs to find the
// consensus; index.ts starts the relays the same way in every mode.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { ed25519KeyPair } from '../../onion/crypto/primitives.js'
import { randomHex } from '../../onion/crypto/random.js'
import { allFlags, directoryFingerprint, signConsensus } from '../../onion/directory/consensus.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import { loadOrCreateDirectoryKey, loadOrCreateIdentity, writeSecretFile } from '../common/identity.js'
import type { RoleProcess } from './children.js'
import { waitServing } from './consensus-wait.js'
import type { DevnetMode, DevnetServices, RoleInfo } from './devnet-file.js'

export type SplitService = 'directory' | 'auth' | 'messages' | 'gateway'

/** the final hop of a `file` devnet: a hop the caller runs (its signed descriptor), listed as the consensus's server */
export interface FinalHopInit {
  descriptor: Descriptor
  /** its process (default: the caller's own, for an in-process hop) */
  pid?: number
  dataDir?: string
}

export interface SideInit {
  mode: DevnetMode
  dir: string
  host: string
  portBase: number
  serverArgs: string[]
  serviceArgs?: Partial<Record<SplitService, string[]>>
  finalHop?: FinalHopInit
  deadline: number
  /** how many relays the devnet runs (extra authorities listen above their ports when portBase is set) */
  relays?: number
  /** `all` mode: directory authorities, the server's and this many less one `server --service directory` processes (default 1) */
  authorities?: number
  /** starts one role as a watched child (index.ts: its death is reported or stops the devnet) */
  launch: (role: string, args: string[]) => RoleProcess
}

export interface DirectorySide {
  /** the authorities' key fingerprints, comma-separated, the server's first */
  directoryKey: string
  directoryThreshold: number
  authorities: { url: string, fingerprint: string, pid?: number, dataDir?: string }[]
  /** where the consensus is served (absent in `file` mode) */
  directoryUrl?: string
  consensusFile?: string
  /** the final hop */
  server: RoleInfo
  services?: DevnetServices
  /** the final hop's process (the server or the gateway; none in `file` mode) */
  serverProc?: RoleProcess
  procs: Partial<Record<string, RoleProcess>>
  /** the flags every relay gets to find and check the consensus */
  relayArgs: string[]
  /** `file` mode: signs and writes a consensus of `relays` and `server`, then waits until each of `serving` serves that very document */
  publish?: (relays: Descriptor[], server: Descriptor | null, serving: { url: string }[], deadline: number) => Promise<void>
}

const LISTEN_LINE = (service: string) => new RegExp(`^server \\(${service}\\) listening on (https?:\\/\\/\\S+)$`)
const DIRKEY_LINE = /^directory key ([0-9a-f]{64})$/
const FINAL_HOP_LINE = /^final hop identity ([0-9a-f]{64})$/

const portOf = (url: string): number => Number(new URL(url).port)

/** one `marshmello server --service X` process (as `role`, default the service's name); resolves once it prints where it listens */
async function service (s: SideInit, name: 'all' | SplitService, dataDir: string, port: number, args: string[], role?: string): Promise<{ proc: RoleProcess, url: string }> {
  const proc = s.launch(role ?? (name === 'all' ? 'server' : name), ['server', ...(name === 'all' ? [] : ['--service', name]), '--port', String(port), '--host', s.host, '--data-dir', dataDir, ...(name === 'all' || name === 'directory' ? ['--private-network'] : []), ...args])
  const url = (await proc.waitForLine(LISTEN_LINE(name), s.deadline))[1]
  return { proc, url }
}

const info = (p: { proc: RoleProcess, url: string }, fingerprint: string, dataDir: string, host: string): RoleInfo =>
  ({ url: p.url, host, port: portOf(p.url), pid: p.proc.pid, fingerprint, dataDir })

/** a port free on `host` now (the system's pick, released at once: authorities must know each other's URLs before they start) */
function freePort (host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const { port } = srv.address() as AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** the server's flags that set how a directory authority votes: its peers must vote alike (flag times, staleness, probes) */
function votingFlags (args: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (['--stable-after', '--guard-after', '--relay-stale', '--max-relays-per-ip'].includes(a) && i + 1 < args.length) out.push(a, args[++i]!)
    else if (/^--(stable-after|guard-after|relay-stale|max-relays-per-ip)=/.test(a) || a === '--no-verify-relays' || a === '--verify-relays=false') out.push(a)
  }
  return out
}

async function startAll (s: SideInit): Promise<DirectorySide> {
  const dataDir = join(s.dir, 'server')
  const k = s.authorities ?? 1
  if (!Number.isInteger(k) || k < 1 || k > 9) throw new Error('--authorities must be an integer from 1 to 9')
  if (k === 1) {
    const server = await service(s, 'all', dataDir, s.portBase, s.serverArgs)
    const [directoryKey, finalHop] = await Promise.all([
      server.proc.waitForLine(DIRKEY_LINE, s.deadline).then((m) => m[1]),
      server.proc.waitForLine(FINAL_HOP_LINE, s.deadline).then((m) => m[1]),
    ])
    return {
      directoryKey,
      directoryThreshold: 1,
      authorities: [{ url: server.url, fingerprint: directoryKey, pid: server.proc.pid, dataDir }],
      directoryUrl: server.url,
      server: info(server, finalHop, dataDir, s.host),
      serverProc: server.proc,
      procs: { server: server.proc },
      relayArgs: ['--directory', server.url, '--directory-key', directoryKey],
    }
  }
  // several authorities (PROTOCOL §7.8): the server's and k - 1 directory services, each
  // configured with the others' URLs and key fingerprints, so their keys (and the final
  // hop's identity, which the others list from the server's vote) are made here first,
  // with the server's own functions, in the data dirs the processes then load them from
  const dirs = [dataDir, ...Array.from({ length: k - 1 }, (_, j) => join(s.dir, `authority${j + 2}`))]
  const keys = dirs.map((d) => directoryFingerprint(loadOrCreateDirectoryKey(d).publicKey))
  const finalHop = loadOrCreateIdentity(dataDir, s.host).fingerprintHex
  const ports = s.portBase === 0 ? await Promise.all(dirs.map(() => freePort(s.host))) : dirs.map((_, j) => (j === 0 ? s.portBase : s.portBase + (s.relays ?? 0) + j))
  const urls = ports.map((p) => `https://${s.host}:${p}`)
  const peersOf = (j: number) => dirs.flatMap((_, x) => (x === j ? [] : ['--authority-peer', `${keys[x]}@${urls[x]}`]))
  const voting = votingFlags(s.serverArgs)
  // the server first; the other authorities come up while the relays start (their URLs are
  // known already, and relays post again every second until each answers): their deaths
  // are watched like any child's, and the readiness wait needs a majority's signatures
  const others = dirs.slice(1).map((d, i) => {
    const j = i + 1
    const proc = s.launch(`auth${j + 1}`, ['server', '--service', 'directory', '--port', String(ports[j]), '--host', s.host, '--data-dir', d, '--private-network',
      '--gateway-fingerprint', finalHop, ...peersOf(j), ...voting, ...(s.serviceArgs?.directory ?? [])])
    return proc
  })
  const server = await service(s, 'all', dataDir, ports[0]!, [...peersOf(0), ...s.serverArgs])
  const said = (await server.proc.waitForLine(FINAL_HOP_LINE, s.deadline))[1]
  if (said !== finalHop) throw new Error(`the server runs with identity ${said}, not the one made in ${dataDir}`)
  return {
    directoryKey: keys.join(','),
    directoryThreshold: Math.floor(k / 2) + 1,
    authorities: [{ url: server.url, fingerprint: keys[0]!, pid: server.proc.pid, dataDir }, ...others.map((p, i) => ({ url: urls[i + 1]!, fingerprint: keys[i + 1]!, pid: p.pid, dataDir: dirs[i + 1] }))],
    directoryUrl: server.url,
    server: info(server, finalHop, dataDir, s.host),
    serverProc: server.proc,
    procs: { server: server.proc, ...Object.fromEntries(others.map((p, i) => [`auth${i + 2}`, p])) },
    relayArgs: ['--directory', urls.join(','), '--directory-key', keys.join(',')],
  }
}

/** a 0600 secret file, kept between runs like the data dirs */
function secretFile (path: string, make: () => string): string {
  if (!existsSync(path)) writeSecretFile(path, make() + '\n')
  return path
}

async function startSplit (s: SideInit): Promise<DirectorySide> {
  const secrets = join(s.dir, 'secrets')
  mkdirSync(secrets, { recursive: true, mode: 0o700 })
  const internalTokenFile = secretFile(join(secrets, 'internal.token'), () => randomHex(24))
  const tokenSecretFile = secretFile(join(secrets, 'token.secret'), () => randomHex(32))
  const dirs = { directory: join(s.dir, 'directory'), auth: join(s.dir, 'auth'), messages: join(s.dir, 'messages'), gateway: join(s.dir, 'gateway') }
  // the directory lists the gateway and the gateway pins the directory: both keys are
  // made here in their data dirs, with the server's own functions, so the processes load them
  const gatewayFpr = loadOrCreateIdentity(dirs.gateway, s.host).fingerprintHex
  const extra = (x: SplitService) => s.serviceArgs?.[x] ?? []
  const k = s.authorities ?? 1
  if (!Number.isInteger(k) || k < 1 || k > 9) throw new Error('--authorities must be an integer from 1 to 9')
  // more authorities than the directory service: each `--service directory`, told the others'
  // URLs and keys (so those are fixed here first), all listing the gateway
  const authDirs = [dirs.directory, ...Array.from({ length: k - 1 }, (_, j) => join(s.dir, `authority${j + 2}`))]
  const keys = authDirs.map((d) => directoryFingerprint(loadOrCreateDirectoryKey(d).publicKey))
  const directoryKey = keys[0]!
  const ports = k === 1 ? [0] : s.portBase === 0 ? await Promise.all(authDirs.map(() => freePort(s.host))) : authDirs.map((_, j) => s.portBase + (s.relays ?? 0) + 1 + j)
  const urls = ports.map((p) => `https://${s.host}:${p}`)
  const peersOf = (j: number) => k === 1 ? [] : authDirs.flatMap((_, x) => (x === j ? [] : ['--authority-peer', `${keys[x]}@${urls[x]}`]))
  // the directory service's own flags (serviceArgs.directory) go to every authority: they vote alike
  const others = authDirs.slice(1).map((d, i) => s.launch(`auth${i + 2}`, ['server', '--service', 'directory', '--port', String(ports[i + 1]), '--host', s.host, '--data-dir', d, '--private-network',
    '--gateway-fingerprint', gatewayFpr, ...peersOf(i + 1), ...extra('directory')]))
  const internal = ['--internal-token-file', internalTokenFile]
  const [directory, auth] = await Promise.all([
    service(s, 'directory', dirs.directory, ports[0]!, ['--gateway-fingerprint', gatewayFpr, ...peersOf(0), ...extra('directory')]),
    service(s, 'auth', dirs.auth, 0, [...internal, '--token-secret-file', tokenSecretFile, ...extra('auth')]),
  ])
  const directoryUrls = [directory.url, ...urls.slice(1)]
  const messages = await service(s, 'messages', dirs.messages, 0, ['--auth-url', auth.url, ...internal, ...extra('messages')])
  const gateway = await service(s, 'gateway', dirs.gateway, s.portBase, ['--auth-url', auth.url, '--messages-url', messages.url,
    '--directory', directoryUrls.join(','), '--directory-key', keys.join(','), '--token-secret-file', tokenSecretFile, ...internal, ...s.serverArgs, ...extra('gateway')])
  const said = (await gateway.proc.waitForLine(FINAL_HOP_LINE, s.deadline))[1]
  if (said !== gatewayFpr) throw new Error(`the gateway runs with identity ${said}, not the one made in ${dirs.gateway}`)
  return {
    directoryKey: keys.join(','),
    directoryThreshold: Math.floor(k / 2) + 1,
    authorities: [{ url: directory.url, fingerprint: directoryKey, pid: directory.proc.pid, dataDir: dirs.directory },
      ...others.map((p, i) => ({ url: urls[i + 1]!, fingerprint: keys[i + 1]!, pid: p.pid, dataDir: authDirs[i + 1] }))],
    directoryUrl: directory.url,
    server: info(gateway, gatewayFpr, dirs.gateway, s.host),
    services: {
      directory: info(directory, directoryKey, dirs.directory, s.host),
      auth: info(auth, '', dirs.auth, s.host),
      messages: info(messages, '', dirs.messages, s.host),
      internalTokenFile,
      tokenSecretFile,
    },
    serverProc: gateway.proc,
    procs: { directory: directory.proc, auth: auth.proc, messages: messages.proc, gateway: gateway.proc, ...Object.fromEntries(others.map((p, i) => [`auth${i + 2}`, p])) },
    relayArgs: ['--directory', directoryUrls.join(','), '--directory-key', keys.join(',')],
  }
}

/** a consensus is valid this long; a `file` devnet that runs longer must publish again */
const FILE_VALIDITY_MS = 3600_000

function startFile (s: SideInit): DirectorySide {
  const hop = s.finalHop
  if (!hop) throw new Error('a devnet without a server needs the final hop it lists (finalHop)')
  // the signing key lives only in this process: nothing but publish() can list a relay
  const key = ed25519KeyPair()
  const directoryKey = directoryFingerprint(key.publicKey)
  const file = join(s.dir, 'consensus.json')
  const d = hop.descriptor
  const publish = async (relays: Descriptor[], server: Descriptor | null, serving: { url: string }[], deadline: number): Promise<void> => {
    const now = Date.now()
    const doc = signConsensus({ v: 2, method: 1, validAfter: now - 1000, validUntil: now + FILE_VALIDITY_MS, relays, server, flags: allFlags(relays) }, key)
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(doc), { mode: 0o644 })
    renameSync(tmp, file)
    await waitServing({ urls: serving.map((r) => `${r.url}/consensus`), signature: doc.signatures[0]!.signature, deadline })
  }
  return {
    directoryKey,
    directoryThreshold: 1,
    authorities: [],
    consensusFile: file,
    server: { url: `https://${d.host}:${d.port}`, host: d.host, port: d.port, pid: hop.pid ?? process.pid, fingerprint: d.fingerprint, dataDir: hop.dataDir ?? '' },
    procs: {},
    relayArgs: ['--consensus', file, '--directory-key', directoryKey],
    publish,
  }
}

export async function startDirectorySide (s: SideInit): Promise<DirectorySide> {
  if (s.mode === 'split') return startSplit(s)
  if (s.mode === 'file') return startFile(s)
  return startAll(s)
}
