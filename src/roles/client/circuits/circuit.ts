// A client's circuit (docs/PROTOCOL.md §5, §6), the I/O shell: runs the pure build
// (src/onion/circuits/client-build.ts) over the entry relay's channel with a timer per
// step, then carries requests as streams (streams.ts). It decides no protocol itself:
// what a cell means is the build's and the onion's; which hop to avoid next is the
// circuit manager's. Relays are authenticated against the signed consensus (P4).
import { EventEmitter } from 'node:events'
import { MarshmelloError } from '../../../errors.js'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../onion/cells/channel-cell.js'
import { RelayCommand } from '../../../onion/cells/layer.js'
import { HopError, decodeError } from '../../../onion/cells/relay-msg.js'
import { ClientBuild, describeHop, type BuildAction } from '../../../onion/circuits/client-build.js'
import { hopErrorName } from '../../../onion/circuits/hop-error.js'
import type { Descriptor } from '../../../onion/directory/descriptor.js'
import type { ApiRequest, ApiResponse } from '../../../onion/streams/envelope.js'
import { systemClock, type Clock, type Timer } from '../../common/clock.js'
import type { ChannelPool, ClientChannel } from './channel-pool.js'
import { CircuitError } from './circuit-error.js'
import { Streams } from './streams.js'

export interface CircuitInit {
  /** relays in order, then the final hop (the server) */
  path: Descriptor[]
  channels: ChannelPool
  /** per build step and default per request */
  timeoutMs?: number
  /**
   * when the entry channel closes, keep the circuit's id and keys (pending requests fail
   * with MM_ERR_CIRCUIT_DETACHED, 'detached' is emitted) so that reattach() can carry
   * it over a new channel, e.g. to a replacement process of the entry relay sharing its
   * session store; default false: a closed channel closes the circuit
   */
  reattachable?: boolean
  clock?: Clock
}

export interface CircuitEvents { closed: [Error], detached: [Error] }

const closedError = () => new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', 'circuit is closed')
const detachedError = () => new CircuitError(1, 'MM_ERR_CIRCUIT_DETACHED', 'circuit is detached from its entry channel; reattach it')

export class Circuit extends EventEmitter<CircuitEvents> {
  readonly createdAt: number
  closed = false
  /** the entry channel closed under a reattachable circuit; reattach() to use it again */
  detached = false
  requests = 0
  /** the build under way (null once built) and the promise it settles */
  private building: { resolve: () => void, reject: (e: Error) => void, timer: Timer | null } | null = null
  private readonly streams: Streams

  private constructor (readonly path: Descriptor[], private channel: ClientChannel, readonly circId: number, private readonly timeoutMs: number, private readonly reattachable: boolean, private readonly clock: Clock, private readonly machine: ClientBuild) {
    super()
    this.createdAt = clock.now()
    this.streams = new Streams(path.length, (body) => this.sendRelay(path.length, RelayCommand.DATA, body), clock)
  }

  /** the circuit's layers: one per hop, added as the build goes */
  get onion () { return this.machine.onion }

  static async build (init: CircuitInit): Promise<Circuit> {
    try {
      return await Circuit.buildOnce(init)
    } catch (err) {
      // the entry relay refused the id: another client behind our address (NAT) holds it
      if ((err as { code?: string }).code !== 'MM_ERR_CIRCUIT_ID_IN_USE') throw err
      return await Circuit.buildOnce(init)
    }
  }

  private static async entryChannel (channels: ChannelPool, d: Descriptor, timeoutMs: number): Promise<ClientChannel> {
    try {
      return await channels.get(d, timeoutMs)
    } catch (err) {
      throw new CircuitError(1, 'MM_ERR_CIRCUIT_BUILD', `${describeHop(d, 1)} is unreachable: ${(err as Error).message}`)
    }
  }

  private static async buildOnce (init: CircuitInit): Promise<Circuit> {
    const timeoutMs = init.timeoutMs ?? 10_000
    if (init.path.length < 1) throw new MarshmelloError('MM_ERR_CIRCUIT', 'a circuit needs at least one hop')
    const channel = await Circuit.entryChannel(init.channels, init.path[0], timeoutMs)
    const c = new Circuit(init.path, channel, channel.newCircId(), timeoutMs, init.reattachable ?? false, init.clock ?? systemClock, new ClientBuild(init.path))
    c.attach(channel)
    await new Promise<void>((resolve, reject) => {
      c.building = { resolve, reject, timer: null }
      c.act(c.machine.start())
    })
    return c
  }

  /** carries out one action of the build */
  private act (a: BuildAction): void {
    const b = this.building
    if (!b || a.kind === 'wait') return
    b.timer?.cancel()
    b.timer = null
    if (a.kind === 'send') {
      this.channel.ch.send(encodeChannelCell(this.circId, a.cmd, a.data))
      b.timer = this.clock.setTimeout(() => this.act(this.machine.onTimeout()), this.timeoutMs)
      // the next hop's handshake, once the cell just sent has left (the channel flushes at the end of the tick)
      setImmediate(() => { if (!this.closed) this.machine.prepareNext() })
      return
    }
    this.building = null
    if (a.kind === 'done') return b.resolve()
    const err = new CircuitError(a.hop, a.code, a.message, a.at)
    if (a.destroy && !this.channel.ch.closed) this.channel.ch.send(encodeChannelCell(this.circId, ChannelCommand.DESTROY, Buffer.from([0])))
    this.fail(err)
    b.reject(err)
  }

  private attach (channel: ClientChannel): void {
    this.channel = channel
    channel.circuits.set(this.circId, (cell) => this.onCell(cell))
    channel.closers.set(this.circId, () => {
      if (this.channel !== channel) return
      const err = new CircuitError(1, 'MM_ERR_CIRCUIT_CLOSED', `the channel to ${describeHop(this.path[0], 1)} closed`)
      if (this.reattachable && !this.closed && this.building === null) this.detach(err)
      else this.fail(err)
    })
  }

  private detach (cause: Error): void {
    if (this.detached || this.closed) return
    this.detached = true
    this.channel.drop(this.circId)
    const err = new CircuitError(1, 'MM_ERR_CIRCUIT_DETACHED', `${cause.message}; reattach the circuit to use it again`)
    this.streams.failAll(err)
    this.emit('detached', err)
  }

  /**
   * Carries a detached circuit over a new channel to its entry relay (the same identity,
   * e.g. a replacement process sharing the relay's session store), keeping its id and
   * keys. Throws MM_ERR_CIRCUIT_BUILD when the relay cannot be reached (the circuit
   * stays detached: try again), MM_ERR_CIRCUIT_CLOSED when it was closed.
   */
  async reattach (channels: ChannelPool): Promise<void> {
    if (this.closed) throw closedError()
    if (!this.detached && !this.channel.ch.closed) return
    const channel = await Circuit.entryChannel(channels, this.path[0], this.timeoutMs)
    if (this.closed) throw closedError()
    if (channel.circuits.has(this.circId)) throw new CircuitError(1, 'MM_ERR_CIRCUIT_ID_IN_USE', 'another circuit on the new channel has this id')
    this.attach(channel)
    this.detached = false
  }

  private sendRelay (target: number, cmd: RelayCommand, body: Buffer): void {
    if (this.closed) throw closedError()
    if (this.detached) throw detachedError()
    this.channel.ch.send(encodeChannelCell(this.circId, ChannelCommand.RELAY, this.onion.wrapForward(target, cmd, body)))
  }

  private onCell (cell: ChannelCell): void {
    if (this.building) return this.act(this.machine.onCell(cell.cmd, cell.data))
    if (cell.cmd === ChannelCommand.DESTROY) {
      const code = cell.data[0] === HopError.INTEGRITY ? 'MM_ERR_CIRCUIT_INTEGRITY' : 'MM_ERR_CIRCUIT_CLOSED'
      return this.fail(new CircuitError(1, code, `circuit torn down (${hopErrorName(cell.data[0])})`))
    }
    if (cell.cmd !== ChannelCommand.RELAY) return
    let u
    try {
      u = this.onion.unwrapBackward(cell.data)
    } catch {
      // not the next backward cell of some hop (PROTOCOL §3, §4): dropped, repeated, reordered
      // or altered on the way; the circuit ends, nothing of the cell is used (P6)
      this.destroy(new CircuitError(0, 'MM_ERR_CIRCUIT_INTEGRITY', 'a backward cell did not open at its position: the circuit was tampered with'))
      return
    }
    if (u.cmd === RelayCommand.ERROR) {
      let reason = 'malformed ERROR'
      try { reason = decodeError(u.body).reason } catch {}
      return this.fail(new CircuitError(u.hop, 'MM_ERR_CIRCUIT_CLOSED', `${describeHop(this.path[u.hop - 1], u.hop)} reported: ${reason}`))
    }
    if (u.cmd === RelayCommand.DATA && u.hop === this.onion.length) this.streams.onData(u.body)
  }

  /** sends one API request to the final hop and waits for its response */
  request (req: ApiRequest, opts: { timeoutMs?: number } = {}): Promise<ApiResponse> {
    if (this.closed) return Promise.reject(closedError())
    if (this.detached) return Promise.reject(detachedError())
    this.requests++
    return this.streams.request(req, opts.timeoutMs ?? this.timeoutMs)
  }

  get pendingRequests (): number { return this.streams.size }

  private fail (err: Error): void {
    if (this.closed) return
    this.closed = true
    this.channel.drop(this.circId)
    const b = this.building
    this.building = null
    if (b) { b.timer?.cancel(); b.reject(err) }
    // a handshake prepared for a hop the build never reached: its secrets are erased too
    this.machine.abort()
    this.streams.failAll(err)
    this.onion.wipe()
    this.emit('closed', err)
  }

  /** tears the circuit down along its path and erases its keys; pending requests fail with `err` */
  destroy (err = new CircuitError(0, 'MM_ERR_CIRCUIT_CLOSED', 'circuit destroyed by the client')): void {
    if (this.closed) return
    if (!this.channel.ch.closed) this.channel.ch.send(encodeChannelCell(this.circId, ChannelCommand.DESTROY, Buffer.from([0])))
    this.fail(err)
  }
}
