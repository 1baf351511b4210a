// Test helpers for real networks on loopback: relay processes started from the
// CLI, a signed consensus file, and an in-process final hop with a chosen handler.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { ed25519KeyPair } from '../../src/onion/crypto/primitives.js'
import { allFlags, directoryFingerprint, signConsensus } from '../../src/onion/directory/consensus.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { hopDescriptor, loadOrCreateIdentity } from '../../src/roles/common/identity.js'
import { registerFinalHop, type FinalHopEndpoint } from '../../src/roles/common/final-hop-endpoint.js'
import type { ApiRequest, ApiResponse } from '../../src/onion/streams/envelope.js'
import { silentLogger } from '../../src/log.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
// build/cli.js (what bin/marshmello loads): tap's process tracking would load the
// extensionless bin script as CommonJS
export const BIN = join(ROOT, 'build', 'cli.js')

export const tmp = (prefix = 'mm-test-'): string => mkdtempSync(join(tmpdir(), prefix))

export interface DirectoryKey { privateKey: Buffer, publicKey: Buffer, fingerprint: string }

export function directoryKey (): DirectoryKey {
  const k = ed25519KeyPair()
  return { ...k, fingerprint: directoryFingerprint(k.publicKey) }
}

export function writeConsensus (file: string, key: DirectoryKey, relays: Descriptor[], server: Descriptor | null): void {
  const now = Date.now()
  const doc = signConsensus({ v: 2, method: 1, validAfter: now - 1000, validUntil: now + 3600_000, relays, server, flags: allFlags(relays) }, key)
  const t = `${file}.tmp`
  writeFileSync(t, JSON.stringify(doc))
  renameSync(t, file)
}

export interface Proc {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpMatchArray>
  exited: Promise<number | null>
  kill: (sig?: NodeJS.Signals) => Promise<number | null>
}

/** runs `marshmello ARGS` as a child process */
export function run (args: string[], opts: { env?: Record<string, string>, input?: string, cwd?: string } = {}): Proc {
  // the child runs the built CLI, not under tap's loaders
  const env: Record<string, string | undefined> = { ...process.env, NODE_OPTIONS: '', ...opts.env }
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd })
  const p = procOf(child)
  if (opts.input !== undefined) child.stdin!.end(opts.input)
  return p
}

/** a test's view of a child just spawned (call it in the same tick, before any output): its whole output, waits and kill */
export function procOf (child: ChildProcess): Proc {
  let out = ''
  let err = ''
  const waiters: { re: RegExp, resolve: (m: RegExpMatchArray) => void }[] = []
  const check = () => {
    for (const w of [...waiters]) {
      const m = (out + err).match(w.re)
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) }
    }
  }
  child.stdout!.on('data', (d) => { out += d; check() })
  child.stderr!.on('data', (d) => { err += d; check() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (re, ms = 20_000) => new Promise((resolve, reject) => {
      const m = (out + err).match(re)
      if (m) return resolve(m)
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in output:\n${out}\n${err}`)), ms)
      waiters.push({ re, resolve: (x) => { clearTimeout(timer); resolve(x) } })
      exited.then((code) => { clearTimeout(timer); reject(new Error(`process exited (${code}) before ${re}:\n${out}\n${err}`)) })
    }),
    kill: async (sig = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig)
      return exited
    },
  }
}

export interface RelayProc extends Proc { fingerprint: string, port: number, host: string, dataDir: string, descriptor: () => Promise<Descriptor> }

export async function startRelayProc (o: { host: string, consensus: string, dirKey: string, dataDir?: string, extra?: string[], trace?: string }): Promise<RelayProc> {
  const dataDir = o.dataDir ?? tmp('mm-relay-')
  const args = ['relay', '--port', '0', '--host', o.host, '--data-dir', dataDir, '--consensus', o.consensus, '--directory-key', o.dirKey, ...(o.trace ? ['--trace', o.trace] : []), ...(o.extra ?? [])]
  const p = run(args)
  const m = await p.waitFor(/relay ([0-9a-f]{64}) listening on https:\/\/([^:]+):(\d+)/)
  const port = Number(m[3])
  return {
    ...p,
    fingerprint: m[1],
    port,
    host: o.host,
    dataDir,
    descriptor: async () => {
      const res = await httpsGetJson(`https://${o.host}:${port}/descriptor`)
      return res as Descriptor
    },
  }
}

/** GET over HTTPS without a CA: only for documents whose signature the caller verifies */
export async function httpsGetJson (url: string): Promise<unknown> {
  const { request } = await import('node:https')
  return new Promise((resolve, reject) => {
    // test-only: descriptors and consensus are signature-verified; TLS identity is not what is tested here
    const req = request(url, { rejectUnauthorized: false }, (res) => {
      let body = ''
      res.on('data', (d) => { body += d })
      res.on('end', () => { try { resolve(JSON.parse(body)) } catch (e) { reject(e) } })
    })
    req.on('error', reject)
    req.end()
  })
}

export interface EchoHop {
  descriptor: Descriptor
  endpoint: FinalHopEndpoint
  peers: string[]
  requests: ApiRequest[]
  /** the code of every cell the final hop rejected */
  rejected: string[]
  close: () => Promise<void>
}

/** an in-process final hop whose handler echoes the request; it records peers, requests and rejected cells */
export async function startEchoHop (host: string, handler?: (r: ApiRequest) => Promise<ApiResponse>): Promise<EchoHop> {
  const dir = tmp('mm-final-')
  const identity = loadOrCreateIdentity(dir, host)
  const app = Fastify({ https: { key: identity.tlsKeyPem, cert: identity.tlsCertPem }, logger: false })
  const peers: string[] = []
  const requests: ApiRequest[] = []
  const rejected: string[] = []
  const endpoint = await registerFinalHop(app, {
    identity,
    log: silentLogger,
    maxCircuits: 1000,
    circuitTtlMs: 600_000,
    onPeer: (r) => peers.push(r),
    onEvent: (e) => { if (e.type === 'rejected') rejected.push(e.code) },
    handler: handler ?? (async (req) => {
      requests.push(req)
      return { status: 200, headers: { 'content-type': 'application/octet-stream', 'x-path': req.path }, body: req.body }
    }),
  })
  await app.listen({ host, port: 0 })
  const port = (app.server.address() as { port: number }).port
  const descriptor = hopDescriptor(identity, { role: 'server', nickname: 'echo', host, port, lifetimeMs: 3600_000 })
  return { descriptor, endpoint, peers, requests, rejected, close: async () => { endpoint.closeAll(); await app.close() } }
}
