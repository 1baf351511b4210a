// A client's circuit (DESIGN §2, docs/PROTOCOL.md §5): builds hop by hop through
// the entry relay's channel (CREATE, then EXTEND per further hop), carries API
// requests as streams (several at once), and reports which hop failed. Relays
// are authenticated against the identity keys in the signed consensus (P4).
import { EventEmitter } from 'node:events'
import { randomInt } from 'node:crypto'
import { MarshmelloError, isMarshmelloError, type ErrorCode } from '../../errors.js'
import { forwardBodyMax } from '../../onion/cells/constants.js'
import { RelayCommand } from '../../onion/cells/layer.js'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../onion/cells/channel-cell.js'
import { DataFlag, HopError, decodeData, decodeError, encodeData, encodeExtend } from '../../onion/cells/relay-msg.js'
import { ClientOnion } from '../../onion/circuits/client-onion.js'
import { clientFinish, clientStart } from '../../onion/handshake/oaep-x25519.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import { decodeResponse, encodeRequest, type ApiRequest, type ApiResponse } from '../../onion/streams/envelope.js'
import { Reassembler, fragment } from '../../onion/streams/reassembly.js'
import { connectChannel, type Channel } from '../common/channel.js'

/** Thrown when a circuit cannot be built or dies; `hop` is 1-based (0: the link itself). */
export class CircuitError extends MarshmelloError {
  constructor (readonly hop: number, code: ErrorCode, message: string) {
    super(code, message)
  }
}

export const describeHop = (d: Descriptor, i: number): string =>
  `hop ${i} (${d.nickname || d.role} ${d.fingerprint.slice(0, 8)} at ${d.host}:${d.port})`

/** one channel to an entry relay, shared by every circuit through it */
class ClientChannel {
  readonly circuits = new Map<number, (cell: ChannelCell) => void>()
  /** what each circuit does when the channel closes (one listener for all of them) */
  readonly closers = new Map<number, () => void>()
  constructor (readonly ch: Channel) {
    ch.on('cell', (cell) => this.circuits.get(cell.circId)?.(cell))
    ch.once('close', () => { for (const f of [...this.closers.values()]) f() })
  }

  /** forgets a circuit on this link */
  drop (circId: number): void {
    this.circuits.delete(circId)
    this.closers.delete(circId)
  }

  newCircId (): number {
    let id: number
    do id = randomInt(1, 0xffffffff); while (this.circuits.has(id))
    return id
  }
}

export class ChannelPool {
  private readonly links = new Map<string, Promise<ClientChannel>>()
  constructor (private readonly localAddress?: string) {}

  get (d: Descriptor, timeoutMs: number): Promise<ClientChannel> {
    const k = d.fingerprint
    let p = this.links.get(k)
    if (!p) {
      p = connectChannel({ host: d.host, port: d.port, tlsCert: d.tlsCert, tlsFingerprint: d.tlsFingerprint, localAddress: this.localAddress, timeoutMs })
        .then((ch) => {
          const link = new ClientChannel(ch)
          ch.on('close', () => { if (this.links.get(k) === p) this.links.delete(k) })
          return link
        })
      p.catch(() => { if (this.links.get(k) === p) this.links.delete(k) })
      this.links.set(k, p)
    }
    return p
  }

  async close (): Promise<void> {
    const all = [...this.links.values()]
    this.links.clear()
    for (const p of all) (await p.catch(() => null))?.ch.close(1000, 'client closing')
  }
}

export interface CircuitInit {
  /** relays in order, then the final hop (the server) */
  path: Descriptor[]
  links: ChannelPool
  /** per build step and default per request */
  timeoutMs?: number
  /**
   * when the entry link closes, keep the circuit's id and keys (pending requests fail
   * with MM_ERR_CIRCUIT_DETACHED, 'detached' is emitted) so that reattach() can carry
   * it over a new link, e.g. to a replacement process of the entry relay sharing its
   * session store; default false: a closed link closes the circuit
   */
  reattachable?: boolean
}

interface Pending { resolve: (r: ApiResponse) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

export interface CircuitEvents { closed: [Error], detached: [Error] }

export class Circuit extends EventEmitter<CircuitEvents> {
  readonly onion = new ClientOnion()
  readonly createdAt = Date.now()
  closed = false
  /** the entry link closed under a reattachable circuit; reattach() to use it again */
  detached = false
  requests = 0
  private nextStream = 1
  private readonly streams = new Map<number, Pending>()
  private readonly reasm = new Reassembler()
  private step: { resolve: (u: { hop: number, cmd: RelayCommand, body: Buffer }) => void, reject: (e: Error) => void } | null = null
  private created: ((c: ChannelCell) => void) | null = null
  /** the next hop's handshake, prepared while the previous hop's answer is on its way */
  private prepared: { hop: number, start: ReturnType<typeof clientStart> } | null = null

  private constructor (readonly path: Descriptor[], private link: ClientChannel, readonly circId: number, private readonly timeoutMs: number, private readonly reattachable: boolean) {
    super()
  }

  static async build (init: CircuitInit): Promise<Circuit> {
    try {
      return await Circuit.buildOnce(init)
    } catch (err) {
      // the entry relay refused the id: another client behind our address (NAT) holds it
      if ((err as { code?: string }).code !== 'MM_ERR_CIRCUIT_ID_IN_USE') throw err
      return await Circuit.buildOnce(init)
    }
  }

  private static async entryChannel (links: ChannelPool, d: Descriptor, timeoutMs: number): Promise<ClientChannel> {
    try {
      return await links.get(d, timeoutMs)
    } catch (err) {
      throw new CircuitError(1, 'MM_ERR_CIRCUIT_BUILD', `${describeHop(d, 1)} is unreachable: ${(err as Error).message}`)
    }
  }

  private static async buildOnce (init: CircuitInit): Promise<Circuit> {
    const timeoutMs = init.timeoutMs ?? 10_000
    if (init.path.length < 1) throw new MarshmelloError('MM_ERR_CIRCUIT', 'a circuit needs at least one hop')
    const link = await Circuit.entryChannel(init.links, init.path[0], timeoutMs)
    const c = new Circuit(init.path, link, link.newCircId(), timeoutMs, init.reattachable ?? false)
    c.attach(link)
    try {
      await c.create()
      for (let i = 2; i <= init.path.length; i++) await c.extend(i)
    } catch (err) {
      // an id in use belongs to someone else's circuit at the relay: no DESTROY for it
      if ((err as { code?: string }).code === 'MM_ERR_CIRCUIT_ID_IN_USE') c.fail(err as Error)
      else c.destroy()
      throw err
    }
    return c
  }

  private attach (link: ClientChannel): void {
    this.link = link
    link.circuits.set(this.circId, (cell) => this.onCell(cell))
    link.closers.set(this.circId, () => {
      if (this.link !== link) return
      const err = new CircuitError(1, 'MM_ERR_CIRCUIT_CLOSED', `the channel to ${describeHop(this.path[0], 1)} closed`)
      if (this.reattachable && !this.closed && this.step === null && this.created === null) this.detach(err)
      else this.fail(err)
    })
  }

  private detach (cause: Error): void {
    if (this.detached || this.closed) return
    this.detached = true
    this.link.drop(this.circId)
    const err = new CircuitError(1, 'MM_ERR_CIRCUIT_DETACHED', `${cause.message}; reattach the circuit to use it again`)
    for (const p of this.streams.values()) { clearTimeout(p.timer); p.reject(err) }
    this.streams.clear()
    this.reasm.clear()
    this.emit('detached', err)
  }

  /**
   * Carries a detached circuit over a new link to its entry relay (the same identity,
   * e.g. a replacement process sharing the relay's session store), keeping its id and
   * keys. Throws MM_ERR_CIRCUIT_BUILD when the relay cannot be reached (the circuit
   * stays detached: try again), MM_ERR_CIRCUIT_CLOSED when it was closed.
   */
  async reattach (links: ChannelPool): Promise<void> {
    if (this.closed) throw new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', 'circuit is closed')
    if (!this.detached && !this.link.ch.closed) return
    const link = await Circuit.entryChannel(links, this.path[0], this.timeoutMs)
    if (this.closed) throw new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', 'circuit is closed')
    if (link.circuits.has(this.circId)) throw new CircuitError(1, 'MM_ERR_CIRCUIT_ID_IN_USE', 'another circuit on the new link has this id')
    this.attach(link)
    this.detached = false
  }

  private hopError (i: number, code: ErrorCode, what: string): CircuitError {
    return new CircuitError(i, code, `${describeHop(this.path[i - 1], i)} ${what}`)
  }

  private async create (): Promise<void> {
    const d = this.path[0]
    const { state, create } = this.handshakeFor(1)
    const cell = await new Promise<ChannelCell>((resolve, reject) => {
      const timer = setTimeout(() => reject(this.hopError(1, 'MM_ERR_CIRCUIT_BUILD', 'did not answer CREATE in time')), this.timeoutMs)
      this.created = (c) => { clearTimeout(timer); this.created = null; resolve(c) }
      this.link.ch.send(encodeChannelCell(this.circId, ChannelCommand.CREATE, create))
      this.prepare(2)
    })
    // DESTROY(HANDSHAKE): the hop could not decrypt a secret sealed to the listed identity key (P4)
    if (cell.cmd === ChannelCommand.DESTROY && cell.data[0] === HopError.HANDSHAKE) throw this.hopError(1, 'MM_ERR_HOP_AUTH', 'failed authentication: it could not open a handshake sealed to the identity key listed in the consensus')
    if (cell.cmd === ChannelCommand.DESTROY && cell.data[0] === HopError.IN_USE) throw this.hopError(1, 'MM_ERR_CIRCUIT_ID_IN_USE', 'refused the circuit id: in use from this address')
    if (cell.cmd === ChannelCommand.DESTROY) throw this.hopError(1, 'MM_ERR_CIRCUIT_BUILD', `refused the circuit (${HopError[cell.data[0]] ?? 'reason ' + cell.data[0]})`)
    try {
      this.onion.addHop(Buffer.from(d.fingerprint, 'hex'), clientFinish(state, cell.data))
    } catch (err) {
      throw this.hopError(1, 'MM_ERR_HOP_AUTH', 'failed authentication: it does not hold the identity key listed in the consensus')
    }
  }

  /** hop i's handshake: the one prepared in the background, or a new one */
  private handshakeFor (i: number): ReturnType<typeof clientStart> {
    const p = this.prepared
    this.prepared = null
    if (p?.hop === i) return p.start
    return clientStart({ identityKey: Buffer.from(this.path[i - 1].identityKey, 'base64') })
  }

  /**
   * Starts hop i's handshake (an X25519 key and an RSA encryption, ~0.1 ms) after the
   * cell just sent has left (the channel flushes at the end of the tick), so it is
   * ready when the previous hop answers instead of delaying the next step.
   */
  private prepare (i: number): void {
    if (i > this.path.length) return
    setImmediate(() => {
      if (this.closed || this.prepared !== null) return
      this.prepared = { hop: i, start: clientStart({ identityKey: Buffer.from(this.path[i - 1].identityKey, 'base64') }) }
    })
  }

  private awaitBackward (hop: number): Promise<{ hop: number, cmd: RelayCommand, body: Buffer }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.step = null; reject(this.hopError(hop, 'MM_ERR_CIRCUIT_BUILD', 'did not answer in time')) }, this.timeoutMs)
      this.step = {
        resolve: (u) => { clearTimeout(timer); this.step = null; resolve(u) },
        reject: (e) => { clearTimeout(timer); this.step = null; reject(e) },
      }
    })
  }

  private async extend (i: number): Promise<void> {
    const d = this.path[i - 1]
    const { state, create } = this.handshakeFor(i)
    const body = encodeExtend({ fingerprint: Buffer.from(d.fingerprint, 'hex'), host: d.host, port: d.port, create })
    const answer = this.awaitBackward(i)
    this.sendRelay(i - 1, RelayCommand.EXTEND, body)
    this.prepare(i + 1)
    const u = await answer
    if (u.cmd === RelayCommand.ERROR) {
      const e = decodeError(u.body)
      const code = e.code === HopError.NOT_LISTED ? 'MM_ERR_NOT_LISTED' : e.code === HopError.HANDSHAKE ? 'MM_ERR_HOP_AUTH' : 'MM_ERR_CIRCUIT_BUILD'
      throw this.hopError(i, code, `could not be reached from hop ${u.hop}: ${e.reason}`)
    }
    if (u.cmd !== RelayCommand.EXTENDED || u.hop !== i - 1) throw this.hopError(i, 'MM_ERR_CIRCUIT_BUILD', `: unexpected answer ${RelayCommand[u.cmd]} from hop ${u.hop}`)
    try {
      this.onion.addHop(Buffer.from(d.fingerprint, 'hex'), clientFinish(state, u.body))
    } catch {
      throw this.hopError(i, 'MM_ERR_HOP_AUTH', 'failed authentication: it does not hold the identity key listed in the consensus')
    }
  }

  private sendRelay (target: number, cmd: RelayCommand, body: Buffer): void {
    if (this.closed) throw new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', 'circuit is closed')
    if (this.detached) throw new CircuitError(1, 'MM_ERR_CIRCUIT_DETACHED', 'circuit is detached from its entry link; reattach it')
    this.link.ch.send(encodeChannelCell(this.circId, ChannelCommand.RELAY, this.onion.wrapForward(target, cmd, body)))
  }

  private onCell (cell: ChannelCell): void {
    if (cell.cmd === ChannelCommand.CREATED || (cell.cmd === ChannelCommand.DESTROY && this.created)) {
      return this.created?.(cell)
    }
    if (cell.cmd === ChannelCommand.DESTROY) {
      return this.fail(new CircuitError(1, 'MM_ERR_CIRCUIT_CLOSED', `circuit torn down (${HopError[cell.data[0]] ?? 'reason ' + cell.data[0]})`))
    }
    if (cell.cmd !== ChannelCommand.RELAY) return
    let u
    try {
      u = this.onion.unwrapBackward(cell.data)
    } catch {
      return // not authentic or replayed: dropped (P6)
    }
    if (this.step) return this.step.resolve(u)
    if (u.cmd === RelayCommand.ERROR) {
      const e = decodeError(u.body)
      return this.fail(this.hopError(u.hop, 'MM_ERR_CIRCUIT_CLOSED', `reported: ${e.reason}`))
    }
    if (u.cmd !== RelayCommand.DATA || u.hop !== this.onion.length) return
    let whole: Buffer | undefined
    let streamId = 0
    try {
      const m = decodeData(u.body)
      streamId = m.streamId
      whole = this.reasm.push(m)
    } catch {
      return
    }
    if (!whole) return
    const p = this.streams.get(streamId)
    if (!p) return
    this.streams.delete(streamId)
    clearTimeout(p.timer)
    try {
      p.resolve(decodeResponse(whole))
    } catch (err) {
      p.reject(err as Error)
    }
  }

  /** sends one API request to the final hop and waits for its response */
  request (req: ApiRequest, opts: { timeoutMs?: number } = {}): Promise<ApiResponse> {
    if (this.closed) return Promise.reject(new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', 'circuit is closed'))
    if (this.detached) return Promise.reject(new CircuitError(1, 'MM_ERR_CIRCUIT_DETACHED', 'circuit is detached from its entry link; reattach it'))
    const streamId = this.nextStream++
    if (this.nextStream > 0xfffffff0) this.nextStream = 1
    this.requests++
    const n = this.onion.length
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.streams.delete(streamId)
        try { this.sendRelay(n, RelayCommand.DATA, encodeData({ streamId, flags: DataFlag.RESET, data: Buffer.alloc(0) })) } catch {}
        reject(new CircuitError(n, 'MM_ERR_TIMEOUT', `no response through the circuit within ${opts.timeoutMs ?? this.timeoutMs} ms`))
      }, opts.timeoutMs ?? this.timeoutMs)
      this.streams.set(streamId, { resolve, reject, timer })
      try {
        for (const part of fragment(streamId, encodeRequest(req), forwardBodyMax(n))) this.sendRelay(n, RelayCommand.DATA, part)
      } catch (err) {
        clearTimeout(timer)
        this.streams.delete(streamId)
        reject(isMarshmelloError(err) ? err : new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', (err as Error).message))
      }
    })
  }

  get pendingRequests (): number { return this.streams.size }

  private fail (err: Error): void {
    if (this.closed) return
    this.closed = true
    this.link.drop(this.circId)
    this.step?.reject(err)
    this.created?.({ circId: this.circId, cmd: ChannelCommand.DESTROY, data: Buffer.from([HopError.UNREACHABLE]) })
    for (const p of this.streams.values()) { clearTimeout(p.timer); p.reject(err) }
    this.streams.clear()
    this.reasm.clear()
    this.onion.wipe()
    // a handshake prepared for a hop the build never reached: its secrets are erased too
    if (this.prepared) { this.prepared.start.state.eph.dispose(); this.prepared.start.state.s.fill(0); this.prepared = null }
    this.emit('closed', err)
  }

  /** tears the circuit down along its path and erases its keys */
  destroy (): void {
    if (this.closed) return
    if (!this.link.ch.closed) this.link.ch.send(encodeChannelCell(this.circId, ChannelCommand.DESTROY, Buffer.from([0])))
    this.fail(new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', 'circuit destroyed by the client'))
  }
}
