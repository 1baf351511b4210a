// A whole network for tests that need control over addresses: one `marshmello
// server` process and N relay processes, each relay on its own loopback address
// (127.0.0.11, .12, … unless told), registered with the server's directory. Waits
// until the directory's consensus and every relay's cached copy list them all,
// then writes DIR/devnet.json so client commands can use `--devnet DIR`.
// (`marshmello devnet` is the user-facing equivalent; this one is for tests.)
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fetchDocument } from '../../src/roles/common/signed-fetch.js'
import type { DevnetFile } from '../../src/roles/client/network.js'
import { run, tmp, type Proc } from './net.js'

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

export interface RelayInfo {
  nickname: string
  url: string
  host: string
  port: number
  fingerprint: string
  dataDir: string
  proc: Proc
}

export interface Network {
  dir: string
  server: ServerInfo
  relays: RelayInfo[]
  stop: () => Promise<void>
}

export interface NetworkInit {
  relays?: number
  dir?: string
  serverArgs?: string[]
  relayHosts?: string[]
  /** extra arguments for relay i */
  relayArgs?: (i: number) => string[]
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function listed (url: string): Promise<{ relays: string[], server: string | null } | null> {
  try {
    const res = await fetchDocument(url)
    if (res.status !== 200) return null
    const doc = JSON.parse(res.text)
    return { relays: (doc.relays ?? []).map((r: { fingerprint: string }) => r.fingerprint), server: doc.server?.fingerprint ?? null }
  } catch {
    return null
  }
}

/**
 * Waits until the directory's consensus and each relay's cached copy list every
 * relay and a final hop (the server, or the gateway in split mode).
 */
export async function waitForConsensus (directory: string, relays: RelayInfo[], ms = 30_000): Promise<void> {
  const want = relays.map((r) => r.fingerprint)
  const complete = (l: { relays: string[], server: string | null } | null) => !!l && !!l.server && want.every((f) => l.relays.includes(f))
  const deadline = Date.now() + ms
  const urls = [`${directory}/v1/directory/consensus`, ...relays.map((r) => `${r.url}/consensus`)]
  let pending = urls
  while (pending.length) {
    const results = await Promise.all(pending.map(listed))
    pending = pending.filter((_u, i) => !complete(results[i]))
    if (!pending.length) return
    if (Date.now() > deadline) throw new Error(`consensus incomplete after ${ms} ms at ${pending.join(', ')}`)
    await sleep(250)
  }
}

export function writeDevnet (dir: string, directoryKey: string, server: { url: string, host: string, port: number, fingerprint: string }, relays: RelayInfo[]): void {
  const doc: DevnetFile = {
    version: 1,
    directoryKey,
    server,
    relays: relays.map((r) => ({ nickname: r.nickname, url: r.url, host: r.host, port: r.port, fingerprint: r.fingerprint })),
  }
  writeFileSync(join(dir, 'devnet.json'), JSON.stringify(doc, null, 2) + '\n')
}

export const relayHost = (i: number): string => `127.0.0.${11 + i}`

/** starts a server and `relays` relays on distinct loopback addresses; see the file comment */
export async function startNetwork (init: NetworkInit = {}): Promise<Network> {
  const n = init.relays ?? 3
  const dir = init.dir ?? tmp('mm-net-')
  mkdirSync(dir, { recursive: true })
  const relays: RelayInfo[] = []
  let server: ServerInfo | undefined
  const stop = async () => {
    await Promise.all(relays.map((r) => stopProc(r.proc)))
    if (server) await stopProc(server.proc)
  }
  try {
    server = await startServerProc({ dataDir: join(dir, 'server'), args: init.serverArgs, env: init.env })
    if (!server.directoryKey || !server.fingerprint) throw new Error(`the server printed no directory key or final hop identity:\n${server.proc.stdout()}`)
    const hosts = init.relayHosts ?? Array.from({ length: n }, (_v, i) => relayHost(i))
    const srv = server
    relays.push(...await Promise.all(hosts.slice(0, n).map((host, i) => startDirectoryRelay({
      host, directory: srv.url, directoryKey: srv.directoryKey, dataDir: join(dir, `relay-${i + 1}`), nickname: `relay${i + 1}`, args: init.relayArgs?.(i), env: init.env,
    }))))
    await waitForConsensus(server.url, relays)
    writeDevnet(dir, server.directoryKey, { url: server.url, host: server.host, port: server.port, fingerprint: server.fingerprint }, relays)
    return { dir, server, relays, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
