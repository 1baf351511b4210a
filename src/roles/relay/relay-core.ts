// What a relay does with cells (DESIGN §2, docs/PROTOCOL.md §5): answers CREATE,
// peels one forward layer per RELAY cell and acts on it (FORWARD to the next hop,
// EXTEND to a hop listed in the signed consensus, DROP), wraps backward cells
// in its layer, and tears circuits down. Circuit state lives in a SessionStore
// (bounded, expiring); one circuit's cells run in order, circuits concurrently.
//
// Store keys are stable names, so that several relay processes sharing one store
// (Redis) serve the same circuits and a replacement process picks them up: forward
// `<previous hop's IP>:<circId>`, backward `b:<next fingerprint>:<next circId>`. Which
// channel a circuit currently arrives on is LOCAL (`live`), updated by every cell
// that opens under the circuit's keys, so a circuit follows a reconnected channel.
// Clients behind one NAT share an IP: a CREATE whose key exists is refused with
// DESTROY IN_USE (the client retries with another id), never merged.
// The per-address CREATE rate limit spares only channels whose peer proved with AUTH
// (§2.3) to hold a listed relay's identity key, never an address: the relay sends AUTH
// on the channels it opens to relays, and checks it on the channels it accepts.
import { randomInt } from 'node:crypto'
import { isMarshmelloError } from '../../errors.js'
import type { Logger } from '../../log.js'
import type { SessionStore } from '../../storage/types.js'
import { RelayCommand } from '../../onion/cells/layer.js'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../onion/cells/channel-cell.js'
import { HopError, decodeExtend, encodeError } from '../../onion/cells/relay-msg.js'
import { CREATED_LENGTH, relayRespond } from '../../onion/handshake/oaep-x25519.js'
import { HOP_RECORD_SIZE, HopState } from '../../onion/circuits/hop-state.js'
import type { Consensus } from '../../onion/directory/consensus.js'
import { listedHops } from '../../onion/directory/consensus.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import { CLOSE, connectChannel, type Channel, type ChannelAuthVerifier } from '../common/channel.js'
import { KeyedQueue, TokenBuckets } from '../common/limits.js'
import { EphemeralPool } from '../../onion/handshake/ephemeral-pool.js'
import type { HopIdentity } from '../common/identity.js'

export interface TraceEvent {
  dir: 'forward' | 'backward' | 'create'
  from: string
  to: string
  size: number
  /** the cell data this relay received (only written with --trace-cells) */
  cell?: Buffer
}

export interface RelayCoreInit {
  identity: HopIdentity
  /** this relay's own host, used as the source address of its outgoing channels */
  host: string
  sessions: SessionStore
  consensus: () => Consensus | null
  /** CREATE cells per second per source address (and burst) */
  createRate: number
  createBurst: number
  extendTimeoutMs?: number
  /** how often local routing entries of circuits the store no longer holds (expired, evicted) are dropped (default 30 s) */
  sweepMs?: number
  /**
   * how long the circuits of a closed inbound channel are kept for the previous hop
   * to come back on a new channel (a replaced relay process, a client reattaching);
   * default 3000 ms
   */
  reattachGraceMs?: number
  log: Logger
  trace?: (e: TraceEvent) => void
}

export interface RelayCounters {
  circuitsCreated: number
  cellsForwarded: number
  cellsBackward: number
  cellsRejected: number
  handshakesRefused: number
  extendsRefused: number
  /** accepted channels whose peer proved a listed relay's identity (AUTH) */
  channelsAuthenticated: number
  /** accepted channels closed because their AUTH did not verify */
  authRefused: number
}

const BACK = 'b:'

/** `<ip>:<circId>` (or `<fp>:<circId>`) → the circuit id; IPv6 addresses contain ':' */
const circOf = (key: string): number => Number(key.slice(key.lastIndexOf(':') + 1))

export class RelayCore {
  readonly counters: RelayCounters = { circuitsCreated: 0, cellsForwarded: 0, cellsBackward: 0, cellsRejected: 0, handshakesRefused: 0, extendsRefused: 0, channelsAuthenticated: 0, authRefused: 0 }
  private readonly channels = new Map<string, Channel>()
  /** X25519 keys made ahead, so answering a CREATE imports none */
  private readonly ephemerals = new EphemeralPool()
  /** circuit keys per channel (forward keys inbound, `<fp>:<circId>` outbound), to tear circuits down when a channel closes */
  private readonly circuitsOn = new Map<string, Set<string>>()
  /** forward key → the inbound channel the circuit's cells currently arrive on (local to this process) */
  private readonly live = new Map<string, Channel>()
  private shuttingDown = false
  private readonly outgoing = new Map<string, Promise<Channel>>()
  private readonly pending = new Map<string, { prevKey: string, timer: NodeJS.Timeout }>()
  private readonly queue = new KeyedQueue()
  private readonly buckets: TokenBuckets
  /** every hop record is serialised into this one buffer: SessionStore.set copies it before returning */
  private readonly record = Buffer.alloc(HOP_RECORD_SIZE)

  private readonly sweepTimer: NodeJS.Timeout
  private sweeping = false

  constructor (private readonly init: RelayCoreInit) {
    this.buckets = new TokenBuckets(init.createRate, init.createBurst)
    this.sweepTimer = setInterval(() => { void this.sweep() }, init.sweepMs ?? 30_000)
    this.sweepTimer.unref()
  }

  /** circuits this process routes locally (inbound live map plus outbound circuit ids) */
  get tracked (): number {
    let n = this.live.size
    for (const [id, set] of this.circuitsOn) if (this.channels.get(id)?.initiator) n += set.size
    return n
  }

  /**
   * Circuits leave the store without a DESTROY when they expire or are evicted; their
   * local routing entries (which channel they arrive on, which ids are used on an
   * outgoing channel) are dropped here, so long-lived channels do not accumulate them.
   */
  async sweep (): Promise<number> {
    if (this.sweeping) return 0
    this.sweeping = true
    let dropped = 0
    try {
      for (const key of [...this.live.keys()]) {
        if (!(await this.init.sessions.get(key))) { this.forget(key); dropped++ }
      }
      for (const [id, set] of this.circuitsOn) {
        if (!this.channels.get(id)?.initiator) continue
        for (const k of [...set]) {
          if (this.pending.has(k)) continue
          if (!(await this.init.sessions.get(BACK + k))) { set.delete(k); dropped++ }
        }
      }
    } catch (err) {
      this.init.log.debug('sweep postponed', { code: isMarshmelloError(err) ? err.code : undefined }) // store unreachable: next time
    } finally {
      this.sweeping = false
    }
    return dropped
  }

  get channelCount (): number { return this.channels.size }

  /** a channel opened by a previous hop (or a client); build it with `acceptChannel(ws, remote, { auth: core.linkAuth })` */
  accept (ch: Channel): void {
    this.track(ch)
    ch.on('auth', (r) => { if ('peer' in r) this.counters.channelsAuthenticated++; else this.counters.authRefused++ })
    ch.on('cell', (cell) => this.onInbound(ch, cell))
  }

  /** how accepted channels check AUTH: against this relay's fingerprint and the relays in its current consensus */
  get linkAuth (): ChannelAuthVerifier {
    return {
      fingerprint: this.init.identity.fingerprint,
      identityKey: (fp) => {
        const d = this.listedRelay(fp)
        return d ? Buffer.from(d.identityKey, 'base64') : undefined
      },
    }
  }

  private relaysOf: { c: Consensus, m: Map<string, Descriptor> } | null = null
  /** the relay (not the server) listed with this fingerprint in the current consensus; one map per consensus */
  private listedRelay (fpHex: string): Descriptor | undefined {
    const c = this.init.consensus()
    if (!c) return undefined
    if (this.relaysOf?.c !== c) this.relaysOf = { c, m: new Map(c.relays.map((r) => [r.fingerprint, r])) }
    return this.relaysOf.m.get(fpHex)
  }

  private track (ch: Channel): void {
    this.channels.set(ch.id, ch)
    this.circuitsOn.set(ch.id, new Set())
    ch.on('close', () => this.onChannelClosed(ch))
  }

  private reject (what: string, err?: unknown): void {
    this.counters.cellsRejected++
    this.init.log.debug('cell rejected', { what, code: isMarshmelloError(err) ? err.code : undefined })
  }

  private remoteIp (ch: Channel): string {
    return ch.remote.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  }

  /* ------------------------------------------------------------ inbound -- */

  private onInbound (ch: Channel, cell: ChannelCell): void {
    const key = `${this.remoteIp(ch)}:${cell.circId}`
    switch (cell.cmd) {
      case ChannelCommand.CREATE: return this.onCreate(ch, cell, key)
      case ChannelCommand.RELAY:
        return this.queue.run(key, () => this.onForward(ch, cell, key), (err) => this.storeFailed(ch, cell.circId, key, 'forward', err))
      case ChannelCommand.DESTROY:
        return this.queue.run(key, () => this.destroyFromPrev(key), (err) => this.reject('destroy', err))
      default:
        ch.close(CLOSE.PROTOCOL, `link command ${cell.cmd} is not valid towards the responder`)
    }
  }

  private onCreate (ch: Channel, cell: ChannelCell, key: string): void {
    const ip = this.remoteIp(ch)
    const circuits = this.circuitsOn.get(ch.id)!
    if (circuits.has(key) && this.live.get(key) === ch) return ch.close(CLOSE.PROTOCOL, 'CREATE reuses a live circuit id')
    // a listed relay's CREATEs extend many clients' circuits: only a proof of its identity
    // on this channel spares them the per-address limit (still listed in this consensus)
    const relay = ch.authenticatedPeer !== undefined && this.listedRelay(ch.authenticatedPeer) !== undefined
    if (!relay && !this.buckets.take(ip)) {
      this.counters.handshakesRefused++
      ch.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.BUSY])))
      return
    }
    this.queue.run(key, async () => {
      // the id's circuit came on a channel that has closed since: the peer reuses the
      // id, so that circuit is over (as after a DESTROY) and the id is free again
      if (this.live.get(key)?.closed === true) await this.destroyFromPrev(key)
      // the key is taken by another live channel from this address (a NAT neighbour),
      // or by a circuit another process of this relay serves: refused, never merged
      if (this.live.has(key) || await this.init.sessions.get(key) !== undefined) {
        ch.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.IN_USE])))
        return this.reject('create on a circuit id in use')
      }
      let hop: HopState, created: Buffer
      try {
        const r = relayRespond({ identityPrivate: this.init.identity.privateDer, fingerprint: this.init.identity.fingerprint, create: cell.data, ephemeral: this.ephemerals.take() })
        hop = new HopState(r.keys)
        created = r.created
      } catch (err) {
        this.reject('create', err)
        ch.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.HANDSHAKE])))
        return
      }
      // create, not set: another process of this relay sharing the store may have taken
      // the id since the check above (a NAT neighbour's CREATE); the first one wins
      if (!await this.init.sessions.create(key, hop.serialize(this.record))) {
        hop.wipe()
        ch.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.IN_USE])))
        return this.reject('create on a circuit id in use')
      }
      this.follow(key, ch)
      this.counters.circuitsCreated++
      ch.send(encodeChannelCell(cell.circId, ChannelCommand.CREATED, created))
      this.init.trace?.({ dir: 'create', from: ch.remote, to: '-', size: cell.data.length + 5 })
    }, (err) => this.storeFailed(ch, cell.circId, key, 'create-store', err))
  }

  /** the circuit `key` now arrives on `ch` (after a cell opened under its keys) */
  private follow (key: string, ch: Channel): void {
    const was = this.live.get(key)
    if (was === ch) return
    if (was) this.circuitsOn.get(was.id)?.delete(key)
    this.live.set(key, ch)
    this.circuitsOn.get(ch.id)?.add(key)
  }

  private forget (key: string): void {
    const ch = this.live.get(key)
    if (ch) this.circuitsOn.get(ch.id)?.delete(key)
    this.live.delete(key)
  }

  /**
   * A store operation failed. When the store is unreachable (MM_ERR_STORE_UNAVAILABLE)
   * the previous hop learns it at once with DESTROY BUSY instead of waiting for a
   * timeout; the shared record, if any, expires by its TTL.
   */
  private storeFailed (ch: Channel, circId: number, key: string, what: string, err: unknown): void {
    this.reject(what, err)
    if (isMarshmelloError(err) && err.code === 'MM_ERR_STORE_UNAVAILABLE') {
      this.forget(key)
      ch.send(encodeChannelCell(circId, ChannelCommand.DESTROY, Buffer.from([HopError.BUSY])))
    }
  }

  private async load (key: string): Promise<HopState | undefined> {
    const rec = await this.init.sessions.get(key)
    return rec ? HopState.deserialize(rec) : undefined
  }

  private async onForward (ch: Channel, cell: ChannelCell, key: string): Promise<void> {
    const hop = await this.load(key)
    if (!hop) {
      // RELAY before CREATE, or after the circuit expired (or was evicted): after
      // this DESTROY the id is free for the peer to reuse in a new CREATE
      if (this.live.get(key) === ch) this.forget(key)
      ch.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.PROTOCOL])))
      return this.reject('relay on unknown circuit')
    }
    let layer
    try {
      layer = hop.peel(cell.data)
    } catch (err) {
      return this.reject('peel', err) // replayed, stale or tampered: dropped, no state change (P6)
    }
    this.follow(key, ch)
    const back = (code: HopError, reason: string) =>
      ch.send(encodeChannelCell(cell.circId, ChannelCommand.RELAY, hop.originate(RelayCommand.ERROR, encodeError({ code, reason }))))
    switch (layer.cmd) {
      case RelayCommand.FORWARD: {
        const next = hop.nextCircId ? await this.channelFor(hop.nextFingerprint!).catch(() => null) : null
        if (!next || next.closed) {
          back(HopError.UNREACHABLE, 'no next hop on this circuit')
          break
        }
        next.send(encodeChannelCell(hop.nextCircId, ChannelCommand.RELAY, layer.body))
        // a channel opened by this process for a circuit another process extended
        this.circuitsOn.get(next.id)?.add(`${hop.nextFingerprint!.toString('hex')}:${hop.nextCircId}`)
        this.counters.cellsForwarded++
        this.init.trace?.({ dir: 'forward', from: ch.remote, to: next.remote, size: cell.data.length + 5, cell: cell.data })
        break
      }
      case RelayCommand.EXTEND:
        await this.onExtend(ch, cell.circId, key, hop, layer.body, back)
        break
      case RelayCommand.DROP:
        break
      default:
        back(HopError.PROTOCOL, `relay command ${layer.cmd} is not for a middle hop`)
    }
    await this.init.sessions.set(key, hop.serialize(this.record))
  }

  private async onExtend (ch: Channel, circId: number, key: string, hop: HopState, body: Buffer, back: (c: HopError, r: string) => void): Promise<void> {
    if (hop.nextCircId) return back(HopError.PROTOCOL, 'circuit is already extended')
    let ext
    try {
      ext = decodeExtend(body)
    } catch {
      return back(HopError.PROTOCOL, 'malformed EXTEND')
    }
    const listed = this.init.consensus() ? listedHops(this.init.consensus()!).get(ext.fingerprint.toString('hex')) : undefined
    if (!listed || listed.host !== ext.host || listed.port !== ext.port) {
      this.counters.extendsRefused++
      return back(HopError.NOT_LISTED, `${ext.host}:${ext.port} is not a hop listed in the consensus`)
    }
    let next: Channel
    try {
      next = await this.channelFor(ext.fingerprint, listed)
    } catch (err) {
      return back(HopError.UNREACHABLE, `cannot reach ${listed.nickname || listed.host + ':' + listed.port}`)
    }
    const used = this.circuitsOn.get(next.id)!
    const fpHex = ext.fingerprint.toString('hex')
    let nextCircId: number
    let pkey: string
    // ids on a channel another process of this relay opened are only in the store, and
    // create() is atomic there: two processes never claim one id for two circuits
    do { nextCircId = randomInt(1, 0xffffffff); pkey = `${fpHex}:${nextCircId}` } while (used.has(pkey) || this.pending.has(pkey) || !await this.init.sessions.create(BACK + pkey, Buffer.from(key)))
    used.add(pkey)
    hop.nextCircId = nextCircId
    hop.nextFingerprint = ext.fingerprint
    const timer = setTimeout(() => {
      if (!this.pending.delete(pkey)) return
      this.queue.run(key, async () => {
        const h = await this.load(key)
        if (!h) return
        ch.send(encodeChannelCell(circId, ChannelCommand.RELAY, h.originate(RelayCommand.ERROR, encodeError({ code: HopError.UNREACHABLE, reason: 'next hop did not answer CREATE' }))))
        await this.init.sessions.set(key, h.serialize(this.record))
      }, (err) => this.reject('extend-timeout', err))
    }, this.init.extendTimeoutMs ?? 10_000)
    timer.unref()
    this.pending.set(pkey, { prevKey: key, timer })
    next.send(encodeChannelCell(nextCircId, ChannelCommand.CREATE, ext.create))
    this.init.trace?.({ dir: 'forward', from: ch.remote, to: next.remote, size: 2048 })
  }

  private async destroyFromPrev (key: string): Promise<void> {
    const hop = await this.load(key)
    this.forget(key)
    await this.init.sessions.delete(key)
    if (!hop) return
    hop.wipe()
    if (hop.nextCircId) {
      const pkey = `${hop.nextFingerprint!.toString('hex')}:${hop.nextCircId}`
      await this.init.sessions.delete(BACK + pkey)
      const next = this.outgoingNow(hop.nextFingerprint!)
      if (next) {
        next.send(encodeChannelCell(hop.nextCircId, ChannelCommand.DESTROY, Buffer.from([0])))
        this.circuitsOn.get(next.id)?.delete(pkey)
      }
    }
  }

  /* ----------------------------------------------------------- outbound -- */

  private outgoingNow (fp: Buffer): Channel | undefined {
    for (const ch of this.channels.values()) if (ch.initiator && ch.peerFingerprint === fp.toString('hex') && !ch.closed) return ch
    return undefined
  }

  /** the one channel to a listed hop, opened on first use */
  private channelFor (fp: Buffer, listed?: Descriptor): Promise<Channel> {
    const hex = fp.toString('hex')
    const existing = this.outgoing.get(hex)
    if (existing) return existing
    const d = listed ?? (this.init.consensus() ? listedHops(this.init.consensus()!).get(hex) : undefined)
    if (!d) return Promise.reject(new Error('not listed'))
    const p = connectChannel({
      host: d.host,
      port: d.port,
      tlsCert: d.tlsCert,
      tlsFingerprint: d.tlsFingerprint,
      localAddress: /^\d+\.\d+\.\d+\.\d+$/.test(this.init.host) ? this.init.host : undefined,
      // a relay proves its identity to the relays it extends to (§2.3); the server takes no AUTH
      auth: d.role === 'relay' ? { identityPrivate: this.init.identity.privateDer, fingerprint: this.init.identity.fingerprint, responderFingerprint: fp } : undefined,
    }).then((ch) => {
      ch.peerFingerprint = hex
      this.track(ch)
      ch.on('cell', (cell) => this.onOutbound(ch, cell))
      ch.on('close', () => { if (this.outgoing.get(hex) === p) this.outgoing.delete(hex) })
      return ch
    })
    p.catch(() => { if (this.outgoing.get(hex) === p) this.outgoing.delete(hex) })
    this.outgoing.set(hex, p)
    return p
  }

  private onOutbound (next: Channel, cell: ChannelCell): void {
    const pkey = `${next.peerFingerprint}:${cell.circId}`
    switch (cell.cmd) {
      case ChannelCommand.CREATED: {
        const p = this.pending.get(pkey)
        if (!p) return next.close(CLOSE.PROTOCOL, 'CREATED for no pending CREATE')
        this.pending.delete(pkey)
        clearTimeout(p.timer)
        return this.queue.run(p.prevKey, async () => {
          const hop = await this.load(p.prevKey)
          const prev = this.prevChannel(p.prevKey)
          if (!hop || !prev) return
          prev.ch.send(encodeChannelCell(prev.circId, ChannelCommand.RELAY, hop.originate(RelayCommand.EXTENDED, cell.data.subarray(0, CREATED_LENGTH))))
          this.init.trace?.({ dir: 'backward', from: next.remote, to: prev.ch.remote, size: 2048 })
          await this.init.sessions.set(p.prevKey, hop.serialize(this.record))
        }, (err) => this.reject('created', err))
      }
      case ChannelCommand.RELAY:
      case ChannelCommand.DESTROY:
        if (cell.cmd === ChannelCommand.DESTROY && this.pending.has(pkey)) return this.onCreateRefused(next, pkey, cell.data[0] ?? 0)
        return this.queue.run(pkey, async () => {
          const prevKeyBytes = await this.init.sessions.get(BACK + pkey)
          if (!prevKeyBytes) return this.reject('backward on unknown circuit')
          const prevKey = Buffer.from(prevKeyBytes).toString()
          if (cell.cmd === ChannelCommand.DESTROY) return this.destroyFromNext(pkey, prevKey, cell.data[0] ?? 0)
          await new Promise<void>((resolve) => this.queue.run(prevKey, async () => {
            const hop = await this.load(prevKey)
            const prev = this.prevChannel(prevKey)
            if (!hop || !prev) return resolve()
            let out: Buffer
            try {
              out = hop.wrapBackward(cell.data)
            } catch (err) {
              this.reject('wrap', err)
              return resolve()
            }
            prev.ch.send(encodeChannelCell(prev.circId, ChannelCommand.RELAY, out))
            this.counters.cellsBackward++
            this.init.trace?.({ dir: 'backward', from: next.remote, to: prev.ch.remote, size: 2048, cell: cell.data })
            await this.init.sessions.set(prevKey, hop.serialize(this.record))
            resolve()
          }, (err) => { this.reject('backward', err); resolve() }))
        }, (err) => this.reject('backward', err))
      default:
        next.close(CLOSE.PROTOCOL, `link command ${cell.cmd} is not valid towards the initiator`)
    }
  }

  /**
   * The next hop answered the CREATE we extended with DESTROY (e.g. HANDSHAKE: it
   * does not hold the listed identity key), or closed the channel before answering
   * (e.g. it refused our AUTH: its consensus does not list us yet). The client learns
   * it as an ERROR from this hop, so it can tell which hop failed; the circuit up to
   * here survives, no longer extended.
   */
  private onCreateRefused (next: Channel, pkey: string, reason: number, why = 'refused CREATE'): void {
    const p = this.pending.get(pkey)!
    this.pending.delete(pkey)
    clearTimeout(p.timer)
    this.circuitsOn.get(next.id)?.delete(pkey)
    const code = reason === HopError.HANDSHAKE || reason === HopError.BUSY ? reason : HopError.UNREACHABLE
    this.queue.run(p.prevKey, async () => {
      await this.init.sessions.delete(BACK + pkey)
      const hop = await this.load(p.prevKey)
      const prev = this.prevChannel(p.prevKey)
      if (!hop || !prev) return
      hop.nextCircId = 0
      hop.nextFingerprint = null
      prev.ch.send(encodeChannelCell(prev.circId, ChannelCommand.RELAY, hop.originate(RelayCommand.ERROR, encodeError({ code, reason: `next hop ${why} (${HopError[code]})` }))))
      await this.init.sessions.set(p.prevKey, hop.serialize(this.record))
    }, (err) => this.reject('create-refused', err))
  }

  private prevChannel (prevKey: string): { ch: Channel, circId: number } | undefined {
    const ch = this.live.get(prevKey)
    return ch && !ch.closed ? { ch, circId: circOf(prevKey) } : undefined
  }

  private async destroyFromNext (pkey: string, prevKey: string, reason: number): Promise<void> {
    const next = this.outgoingNow(Buffer.from(pkey.slice(0, pkey.indexOf(':')), 'hex'))
    if (next) this.circuitsOn.get(next.id)?.delete(pkey)
    await this.init.sessions.delete(BACK + pkey)
    const prev = this.prevChannel(prevKey)
    const hop = await this.load(prevKey)
    await this.init.sessions.delete(prevKey)
    this.forget(prevKey)
    hop?.wipe()
    if (prev) {
      prev.ch.send(encodeChannelCell(prev.circId, ChannelCommand.DESTROY, Buffer.from([reason])))
    }
  }

  private onChannelClosed (ch: Channel): void {
    const keys = this.circuitsOn.get(ch.id) ?? new Set()
    this.channels.delete(ch.id)
    this.circuitsOn.delete(ch.id)
    // shutting down: the records stay in the store for a replacement process (or expire)
    if (this.shuttingDown) return
    if (ch.initiator) {
      for (const pkey of keys) {
        if (this.pending.has(pkey)) {
          this.onCreateRefused(ch, pkey, HopError.UNREACHABLE, 'closed the channel before answering CREATE')
          continue
        }
        this.queue.run(pkey, async () => {
          const prevKeyBytes = await this.init.sessions.get(BACK + pkey)
          if (prevKeyBytes) await this.destroyFromNext(pkey, Buffer.from(prevKeyBytes).toString(), HopError.UNREACHABLE)
        }, (err) => this.reject('close', err))
      }
      return
    }
    // the previous hop may come back on a new channel (its process replaced, a client
    // reattaching): circuits that have not moved to another channel by then are torn down
    const timer = setTimeout(() => {
      for (const key of keys) {
        if (this.live.get(key) !== ch) continue
        this.queue.run(key, async () => { if (this.live.get(key) === ch) await this.destroyFromPrev(key) }, (err) => this.reject('close', err))
      }
    }, this.init.reattachGraceMs ?? 3_000)
    timer.unref()
  }

  /** closes every channel (shutdown); circuit records stay in the store */
  closeAll (): void {
    this.shuttingDown = true
    clearInterval(this.sweepTimer)
    this.ephemerals.clear()
    for (const ch of this.channels.values()) ch.close(CLOSE.NORMAL, 'relay shutting down')
    for (const p of this.pending.values()) clearTimeout(p.timer)
    this.pending.clear()
  }
}
