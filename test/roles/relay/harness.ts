// In-process relay networks for the protocol tests: RelayCore instances with embedded
// session stores, a final hop (finalHopEndpoint with an echo handler), a consensus
// object, memory channels between them (test/helpers/memory-channel.ts) and a fake
// clock that tests advance instead of sleeping. A raw client speaks cells itself with
// the pure client onion, so tests can replay, tamper with and count every cell.
// No processes, sockets or TLS here: those cases stay in the process tests.
import type { Test } from 'tap'
import { tmpdir } from 'node:os'
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { forwardBodyMax } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { decodeData, decodeError, encodeExtend } from '../../../src/onion/cells/relay-msg.js'
import { ClientOnion, type Unwrapped } from '../../../src/onion/circuits/client-onion.js'
import type { Consensus } from '../../../src/onion/directory/consensus.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { clientFinish, clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { decodeResponse, encodeRequest, type ApiRequest, type ApiResponse } from '../../../src/onion/streams/envelope.js'
import { Reassembler, fragment } from '../../../src/onion/streams/reassembly.js'
import { MarshmelloError } from '../../../src/errors.js'
import { silentLogger } from '../../../src/log.js'
import type { ChannelAuthSigner, ChannelAuthVerifier } from '../../../src/roles/common/channel.js'
import type { Clock, Timer } from '../../../src/roles/common/clock.js'
import { finalHopEndpoint, type FinalHopEndpoint } from '../../../src/roles/common/final-hop-endpoint.js'
import { hopDescriptor, loadOrCreateIdentity, type HopIdentity } from '../../../src/roles/common/identity.js'
import { RelayCore, type RelayCoreInit, type TraceEvent } from '../../../src/roles/relay/relay-core.js'
import { lruSessionStore } from '../../../src/storage/sessions/lru.js'
import type { SessionStore } from '../../../src/storage/types.js'
import { inOrder, memoryChannelPair, type MemoryChannel, type MemoryFrame, type MemoryPairInit, type MemoryTransport } from '../../helpers/memory-channel.js'

/** a clock that moves only when told; due timers fire in time order, with promises settled between them */
export class FakeClock implements Clock {
  private t = 1_000_000
  private timers: { at: number, fn: () => void, every?: number, live: boolean }[] = []
  now (): number { return this.t }
  setTimeout (fn: () => void, ms: number): Timer { return this.add(fn, ms) }
  setInterval (fn: () => void, ms: number): Timer { return this.add(fn, ms, ms) }
  private add (fn: () => void, ms: number, every?: number): Timer {
    const timer = { at: this.t + ms, fn, every, live: true }
    this.timers.push(timer)
    return { cancel: () => { timer.live = false } }
  }

  /** lets pending work run, then moves time by `ms`, firing each timer that falls due */
  async advance (ms: number): Promise<void> {
    await settle()
    const end = this.t + ms
    for (;;) {
      this.timers = this.timers.filter((x) => x.live)
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0]
      if (!due) break
      this.t = Math.max(this.t, due.at)
      if (due.every) due.at += due.every
      else due.live = false
      due.fn()
      await settle()
    }
    this.t = end
    await settle()
  }
}

/** lets every queued cell, store operation and callback run (event-loop turns, no time) */
export async function settle (turns = 30): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** waits (in event-loop turns, never time) until fn() holds; false if it never does */
export async function until (fn: () => boolean, turns = 2000): Promise<boolean> {
  for (let i = 0; i < turns && !fn(); i++) await new Promise((resolve) => setImmediate(resolve))
  return fn()
}

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
  /** sees each frame sent to this listener before it arrives; false drops it (a hop that ignores it) */
  intercept?: (frame: Extract<MemoryFrame, { kind: 'frame' }>) => boolean
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
  final!: FinalHopInProcess
  private port = 40000

  constructor () {
    this.consensus = { v: 1, validAfter: 0, validUntil: Number.MAX_SAFE_INTEGER, directoryKey: '', relays: [], server: null, signature: '' }
  }

  /** a new consensus object listing these hops (relays re-read it on their next lookup) */
  publish (relays: Descriptor[], server: Descriptor | null = this.final?.d ?? null): void {
    this.consensus = { ...this.consensus, relays, server }
  }

  /** a relay at host:443 (`name` picks its identity) */
  addRelay (host: string, o: { name?: string, init?: Partial<RelayCoreInit>, maxCircuits?: number, listedAs?: Descriptor } = {}): InProcessRelay {
    const identity = identityFor(o.name ?? host, host)
    const d = o.listedAs ?? hopDescriptor(identity, { role: 'relay', nickname: o.name ?? host, host, port: 443, lifetimeMs: 3600_000 })
    const { store: sessions, keys } = keyedStore(lruSessionStore({ maxEntries: o.maxCircuits ?? 10_000, ttlMs: 600_000 }))
    const opened: Descriptor[] = []
    const traces: TraceEvent[] = []
    const core = new RelayCore({ identity, createRate: 3, createBurst: 90, ...o.init }, {
      sessions,
      consensus: () => this.consensus,
      log: silentLogger,
      clock: this.clock,
      trace: (e) => traces.push(e),
      openChannel: async (target, auth) => {
        opened.push(target)
        return this.open(target, { from: host, signer: auth })
      },
    })
    const relay = { core, identity, d, sessions, opened, traces, storeKeys: () => [...keys] }
    this.listeners.set(`${d.host}:${d.port}`, { accept: (ch) => core.accept(ch), auth: core.channelAuth })
    this.relays.push(relay)
    return relay
  }

  /** the final hop at host:443, answering every request with its own body */
  addFinal (host = '127.0.0.20'): FinalHopInProcess {
    const identity = identityFor('final', host)
    const requests: ApiRequest[] = []
    const rejected: string[] = []
    const peers: string[] = []
    const endpoint = finalHopEndpoint({
      identity,
      log: silentLogger,
      maxCircuits: 1000,
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

  /** opens a memory channel from `from` to whatever listens at target's address; the `a` end is returned */
  open (target: { host: string, port: number }, o: { from?: string, signer?: ChannelAuthSigner, transport?: MemoryPairInit['transport'] } = {}): MemoryChannel {
    const l = this.listeners.get(`${target.host}:${target.port}`)
    if (!l) throw new MarshmelloError('MM_ERR_UNREACHABLE', 'unavailable', `nothing listens at ${target.host}:${target.port}`)
    const carry = o.transport ?? inOrder
    const transport: MemoryTransport = (f, deliver) => {
      if (f.kind === 'frame' && f.from === 'a' && l.intercept && !l.intercept(f)) return
      carry(f, deliver)
    }
    const { a, b } = memoryChannelPair({ aAddress: `${o.from ?? '127.0.0.77'}:${this.port++}`, bAddress: `${target.host}:${target.port}`, auth: l.auth, signer: o.signer, transport })
    l.accept(b)
    return a
  }

  close (): void {
    for (const r of this.relays) r.core.closeAll()
    this.final?.endpoint.closeAll()
  }
}

/** a network of relays on `hosts` and a final hop, all listed */
export function inProcessNet (t: Test, hosts: string[], o: { init?: (i: number) => Partial<RelayCoreInit>, maxCircuits?: (i: number) => number | undefined } = {}): InProcessNet {
  const net = new InProcessNet()
  hosts.forEach((h, i) => net.addRelay(h, { init: o.init?.(i), maxCircuits: o.maxCircuits?.(i) }))
  net.addFinal()
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

/** a real CREATE cell (clientStart against the hop's listed identity key) */
export function createCell (d: Descriptor, circId: number): Buffer {
  return encodeChannelCell(circId, ChannelCommand.CREATE, clientStart({ identityKey: Buffer.from(d.identityKey, 'base64') }).create)
}

export class BuildError extends Error {
  constructor (readonly hop: number, readonly reason: string, readonly cell?: ChannelCell, readonly error?: { hop: number, code: number, reason: string }) { super(`hop ${hop}: ${reason}`) }
}

let nextCircId = 1000
/** a client circuit over raw cells: built hop by hop, then requests to the final hop */
export class RawCircuit {
  readonly onion = new ClientOnion()
  readonly backward: Unwrapped[] = []
  private seen = 0
  private constructor (public ch: MemoryChannel, public cells: ChannelCell[], readonly circId: number) {}

  /** the same circuit (id and keys) goes on over another channel to the entry (a client reattaching) */
  moveTo (channel: { ch: MemoryChannel, cells: ChannelCell[] }): void {
    this.ch = channel.ch
    this.cells = channel.cells
    this.seen = 0
  }

  /** builds through `path`; rejects with BuildError (the hop and what it answered) */
  static async build (net: InProcessNet, path: Descriptor[], o: { from?: string, circId?: number, channel?: { ch: MemoryChannel, cells: ChannelCell[] } } = {}): Promise<RawCircuit> {
    const { ch, cells } = o.channel ?? rawChannel(net, path[0], o.from)
    const c = new RawCircuit(ch, cells, o.circId ?? nextCircId++)
    const first = clientStart({ identityKey: Buffer.from(path[0].identityKey, 'base64') })
    ch.send(encodeChannelCell(c.circId, ChannelCommand.CREATE, first.create))
    const answer = await c.nextCell()
    if (answer.cmd !== ChannelCommand.CREATED) throw new BuildError(1, `answered ${ChannelCommand[answer.cmd]}(${answer.data[0]})`, answer)
    c.finish(path[0], first.state, answer.data, 1)
    for (const d of path.slice(1)) await c.extend(d)
    return c
  }

  /** EXTEND by one hop to `d`; an ERROR (or a failed handshake) is thrown as a BuildError */
  async extend (d: Descriptor): Promise<void> {
    const i = this.onion.length + 1
    const s = clientStart({ identityKey: Buffer.from(d.identityKey, 'base64') })
    this.send(i - 1, RelayCommand.EXTEND, encodeExtend({ fingerprint: Buffer.from(d.fingerprint, 'hex'), host: d.host, port: d.port, create: s.create }))
    const u = await this.nextBackward()
    if (u.cmd === RelayCommand.ERROR) throw new BuildError(i, `ERROR from hop ${u.hop}`, undefined, { hop: u.hop, ...decodeError(u.body) })
    if (u.cmd !== RelayCommand.EXTENDED || u.hop !== i - 1) throw new BuildError(i, `unexpected ${RelayCommand[u.cmd]} from hop ${u.hop}`)
    this.finish(d, s.state, u.body, i)
  }

  private finish (d: Descriptor, state: Parameters<typeof clientFinish>[0], data: Buffer, hop: number): void {
    try {
      this.onion.addHop(Buffer.from(d.fingerprint, 'hex'), clientFinish(state, data))
    } catch (err) {
      throw new BuildError(hop, `handshake: ${(err as MarshmelloError).code}`)
    }
  }

  /** the next cell on this circuit's id (never waits on time: event-loop turns only) */
  async nextCell (): Promise<ChannelCell> {
    const mine = () => this.cells.slice(this.seen).findIndex((c) => c.circId === this.circId)
    if (!await until(() => mine() >= 0 || this.ch.closed)) throw new Error('no answer')
    const i = mine()
    if (i < 0) throw new BuildError(1, 'channel closed')
    const cell = this.cells[this.seen + i]
    this.seen += i + 1
    return cell
  }

  async nextBackward (): Promise<Unwrapped> {
    const cell = await this.nextCell()
    if (cell.cmd !== ChannelCommand.RELAY) throw new BuildError(1, `answered ${ChannelCommand[cell.cmd]}(${cell.data[0]})`, cell)
    const u = this.onion.unwrapBackward(cell.data)
    this.backward.push(u)
    return u
  }

  /** the cell that delivers (cmd, body) to hop `target` */
  cell (target: number, cmd: RelayCommand, body: Buffer): Buffer {
    return encodeChannelCell(this.circId, ChannelCommand.RELAY, this.onion.wrapForward(target, cmd, body))
  }

  send (target: number, cmd: RelayCommand, body: Buffer): void { this.ch.send(this.cell(target, cmd, body)) }

  private stream = 1
  /** one request to the final hop and its whole response */
  async request (req: ApiRequest): Promise<ApiResponse> {
    const streamId = this.stream++
    const hops = this.onion.length
    for (const body of fragment(streamId, encodeRequest(req), forwardBodyMax(hops))) this.send(hops, RelayCommand.DATA, body)
    const r = new Reassembler()
    for (;;) {
      const u = await this.nextBackward()
      if (u.cmd !== RelayCommand.DATA || u.hop !== hops) throw new Error(`unexpected ${RelayCommand[u.cmd]} from hop ${u.hop}`)
      const whole = r.push(decodeData(u.body))
      if (whole) return decodeResponse(whole)
    }
  }

  async echo (text: string): Promise<string> {
    return (await this.request({ method: 'POST', path: '/echo', headers: {}, body: Buffer.from(text) })).body.toString()
  }
}
