// In-process relay networks for the protocol tests: RelayCore instances with embedded
// session stores, a final hop (finalHopEndpoint with an echo handler), a consensus
// object, memory channels between them (test/helpers/memory-channel.ts) and a fake
// clock that tests advance instead of sleeping (fake-clock.ts); raw-circuit.ts is the
// client. No processes, sockets or TLS here: those cases stay in the process tests.
import type { Test } from 'tap'
import { tmpdir } from 'node:os'
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { allFlags, type Consensus } from '../../../src/onion/directory/consensus.js'
import type { ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import type { ApiRequest } from '../../../src/onion/streams/envelope.js'
import { MarshmelloError } from '../../../src/errors.js'
import { silentLogger } from '../../../src/log.js'
import type { ChannelAuthSigner, ChannelAuthVerifier } from '../../../src/roles/common/channel.js'
import { finalHopEndpoint, type FinalHopEndpoint } from '../../../src/roles/common/final-hop-endpoint.js'
import { hopDescriptor, loadOrCreateIdentity, type HopIdentity } from '../../../src/roles/common/identity.js'
import { RelayCore, type RelayCoreInit, type TraceEvent } from '../../../src/roles/relay/relay-core.js'
import { lruSessionStore } from '../../../src/storage/sessions/lru.js'
import type { SessionStore } from '../../../src/storage/types.js'
import { FakeClock } from '../../helpers/fake-clock.js'
import { inOrder, memoryChannelPair, type MemoryChannel, type MemoryFrame, type MemoryPairInit, type MemoryTransport } from '../../helpers/memory-channel.js'

const dir = mkdtempSync(join(tmpdir(), 'mm-inproc-'))
const identities = new Map<string, HopIdentity>()
/** one identity per name for the whole test process (RSA keys are slow to make) */
export function identityFor (name: string, host = '127.0.0.1'): HopIdentity {
  let id = identities.get(name)
  if (!id) identities.set(name, id = loadOrCreateIdentity(join(dir, name), host))
  return id
}

/** something a channel can be opened to */
export interface Listener {
  accept: (ch: MemoryChannel) => void
  auth?: ChannelAuthVerifier
  /** sees each frame sent to this listener before it arrives, with the host that opened its channel; false drops it (a hop that ignores it) */
  intercept?: (frame: Extract<MemoryFrame, { kind: 'frame' }>, openedBy: string) => boolean
  /** carries the frames sent to this listener (default: in order, one turn later); a hold() transport is a hop that stops reading */
  transport?: MemoryTransport
  /** a hop whose channel never finishes opening (a relay's openChannel never settles) */
  stalled?: boolean
}

/** a transport that can stop delivering (a peer that reads nothing) and start again, in order */
export function holdable (): { transport: MemoryTransport, hold: () => void, release: () => void, readonly held: number } {
  let holding = false
  const waiting: (() => void)[] = []
  return {
    // only the frames towards the listener: its own cells still flow back
    transport: (f, deliver) => { if (holding && f.kind === 'frame' && f.from === 'a') waiting.push(deliver); else setImmediate(deliver) },
    hold: () => { holding = true },
    release: () => { holding = false; for (const d of waiting.splice(0)) setImmediate(d) },
    get held () { return waiting.length },
  }
}

export interface InProcessRelay {
  core: RelayCore
  identity: HopIdentity
  d: Descriptor
  sessions: SessionStore
  /** every hop this relay tried to open a channel to */
  opened: Descriptor[]
  /** every trace event the relay wrote (as --trace would) */
  traces: TraceEvent[]
  /** the store keys written and not deleted (the embedded store cannot list them) */
  storeKeys: () => string[]
}

/** the store, with the keys it was given remembered */
function keyedStore (inner: SessionStore): { store: SessionStore, keys: Set<string> } {
  const keys = new Set<string>()
  const store: SessionStore = {
    kind: inner.kind,
    get: (id) => inner.get(id),
    set: async (id, v) => { await inner.set(id, v); keys.add(id) },
    create: async (id, v) => { const ok = await inner.create(id, v); if (ok) keys.add(id); return ok },
    getVersioned: (id) => inner.getVersioned(id),
    compareAndSet: async (id, v, expected) => { const n = await inner.compareAndSet(id, v, expected); if (n) keys.add(id); return n },
    delete: async (id) => { await inner.delete(id); keys.delete(id) },
    size: () => inner.size(),
    close: () => inner.close(),
  }
  return { store, keys }
}

export interface FinalHopInProcess {
  d: Descriptor
  endpoint: FinalHopEndpoint
  requests: ApiRequest[]
  rejected: string[]
  peers: string[]
}

export class InProcessNet {
  readonly clock = new FakeClock()
  readonly relays: InProcessRelay[] = []
  readonly listeners = new Map<string, Listener>()
  consensus: Consensus
  /** the signed consensus text relays serve as directory caches on one-hop circuits (PROTOCOL §7.3); null: none yet */
  raw: string | null = null
  /** what one relay (by host) serves instead of `raw`: a hostile or stale cache */
  readonly rawOf = new Map<string, string | null>()
  final!: FinalHopInProcess
  private port = 40000

  constructor () {
    this.consensus = { v: 2, method: 1, validAfter: 0, validUntil: Number.MAX_SAFE_INTEGER, relays: [], server: null, signatures: [], flags: {} }
  }

  /** a new consensus object listing these hops (relays re-read it on their next lookup) */
  publish (relays: Descriptor[], server: Descriptor | null = this.final?.d ?? null): void {
    this.consensus = { ...this.consensus, relays, server, flags: allFlags(relays) }
  }

  /** a relay at host:443 (`name` picks its identity) */
  addRelay (host: string, o: { name?: string, init?: Partial<RelayCoreInit>, maxCircuits?: number, listedAs?: Descriptor } = {}): InProcessRelay {
    const identity = identityFor(o.name ?? host, host)
    const d = o.listedAs ?? hopDescriptor(identity, { role: 'relay', nickname: o.name ?? host, host, port: 443, lifetimeMs: 3600_000 })
    // as the relay command sizes it: a circuit has two records, and CREATEs beyond maxCircuits are refused
    const { store: sessions, keys } = keyedStore(lruSessionStore({ maxEntries: o.maxCircuits ? 2 * o.maxCircuits + 1024 : 10_000, ttlMs: 600_000 }))
    const opened: Descriptor[] = []
    const traces: TraceEvent[] = []
    const core = new RelayCore({ identity, createRate: 3, createBurst: 90, maxCircuits: o.maxCircuits, ...o.init }, {
      sessions,
      consensus: () => this.consensus,
      directoryDocument: () => this.rawOf.has(host) ? this.rawOf.get(host)! : this.raw,
      log: silentLogger,
      clock: this.clock,
      trace: (e) => traces.push(e),
      openChannel: async (target, auth) => {
        opened.push(target)
        if (this.listeners.get(`${target.host}:${target.port}`)?.stalled) return await new Promise<never>(() => {})
        return this.open(target, { from: host, signer: auth })
      },
    })
    const relay = { core, identity, d, sessions, opened, traces, storeKeys: () => [...keys] }
    this.listeners.set(`${d.host}:${d.port}`, { accept: (ch) => core.accept(ch), auth: core.channelAuth })
    this.relays.push(relay)
    return relay
  }

  /** the final hop at host:443, answering every request with its own body */
  addFinal (host = '127.0.0.20', o: { maxCircuits?: number, createRate?: number, createBurst?: number } = {}): FinalHopInProcess {
    const identity = identityFor('final', host)
    const requests: ApiRequest[] = []
    const rejected: string[] = []
    const peers: string[] = []
    const endpoint = finalHopEndpoint({
      identity,
      log: silentLogger,
      maxCircuits: o.maxCircuits ?? 1000,
      createRate: o.createRate,
      createBurst: o.createBurst,
      circuitTtlMs: 600_000,
      clock: this.clock,
      onPeer: (r) => peers.push(r),
      onEvent: (e) => { if (e.type === 'rejected') rejected.push(e.code) },
      handler: async (req) => {
        requests.push(req)
        return { status: 200, headers: { 'content-type': 'application/octet-stream', 'x-path': req.path }, body: req.body }
      },
    })
    const d = hopDescriptor(identity, { role: 'server', nickname: 'echo', host, port: 443, lifetimeMs: 3600_000 })
    this.listeners.set(`${host}:443`, { accept: (ch) => endpoint.accept(ch) })
    this.final = { d, endpoint, requests, rejected, peers }
    return this.final
  }

  /** a listed-looking relay at host:443 whose channels never finish opening (not published: the caller lists it) */
  addStalled (host: string): Descriptor {
    const identity = identityFor(`stalled-${host}`, host)
    this.listeners.set(`${host}:443`, { accept: () => {}, stalled: true })
    return hopDescriptor(identity, { role: 'relay', nickname: 'stalled', host, port: 443, lifetimeMs: 3600_000 })
  }

  /** opens a memory channel from `from` to whatever listens at target's address; the `a` end is returned */
  open (target: { host: string, port: number }, o: { from?: string, signer?: ChannelAuthSigner, transport?: MemoryPairInit['transport'] } = {}): MemoryChannel {
    const l = this.listeners.get(`${target.host}:${target.port}`)
    if (!l) throw new MarshmelloError('MM_ERR_UNREACHABLE', `nothing listens at ${target.host}:${target.port}`)
    const carry = o.transport ?? l.transport ?? inOrder
    const openedBy = o.from ?? '127.0.0.77'
    const transport: MemoryTransport = (f, deliver) => {
      if (f.kind === 'frame' && f.from === 'a' && l.intercept && !l.intercept(f, openedBy)) return
      carry(f, deliver)
    }
    const { a, b } = memoryChannelPair({ aAddress: `${openedBy}:${this.port++}`, bAddress: `${target.host}:${target.port}`, auth: l.auth, signer: o.signer, transport })
    l.accept(b)
    return a
  }

  close (): void {
    for (const r of this.relays) r.core.closeAll()
    this.final?.endpoint.closeAll()
  }
}

/** a network of relays on `hosts` and a final hop, all listed */
export function inProcessNet (t: Test, hosts: string[], o: { init?: (i: number) => Partial<RelayCoreInit>, maxCircuits?: (i: number) => number | undefined, final?: Parameters<InProcessNet['addFinal']>[1] } = {}): InProcessNet {
  const net = new InProcessNet()
  hosts.forEach((h, i) => net.addRelay(h, { init: o.init?.(i), maxCircuits: o.maxCircuits?.(i) }))
  net.addFinal(undefined, o.final)
  net.publish(net.relays.map((r) => r.d))
  t.teardown(() => net.close())
  return net
}

/** a channel from `from` to hop `d`, with every cell it receives recorded */
export function rawChannel (net: InProcessNet, d: Descriptor, from = '127.0.0.77', signer?: ChannelAuthSigner): { ch: MemoryChannel, cells: ChannelCell[] } {
  const ch = net.open(d, { from, signer })
  const cells: ChannelCell[] = []
  ch.on('cell', (c) => cells.push(c))
  return { ch, cells }
}
