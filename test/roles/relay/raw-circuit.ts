// A client circuit over raw cells for the in-process relay tests: built hop by hop with
// the pure client onion (src/onion/circuits/client-onion.ts), every answer kept, so a
// test can replay, tamper with and count cells, and see exactly what each hop answered
// (a BuildError carries the hop, the DESTROY or the decoded ERROR).
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { forwardBodyMax } from '../../../src/onion/cells/constants.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { decodeData, decodeError, encodeExtend } from '../../../src/onion/cells/relay-msg.js'
import { ClientOnion, type Unwrapped } from '../../../src/onion/circuits/client-onion.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { clientFinish, clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { decodeResponse, encodeRequest, type ApiRequest, type ApiResponse } from '../../../src/onion/streams/envelope.js'
import { Reassembler, fragment } from '../../../src/onion/streams/reassembly.js'
import type { MarshmelloError } from '../../../src/errors.js'
import type { MemoryChannel } from '../../helpers/memory-channel.js'
import { until } from '../../helpers/fake-clock.js'
import { rawChannel, type InProcessNet } from './harness.js'

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
      const got = r.push(decodeData(u.body), 0)
      if (got.kind === 'message') return decodeResponse(got.data)
      if (got.kind !== 'partial') throw new Error(`response stream ${got.streamId}: ${got.kind}`)
    }
  }

  async echo (text: string): Promise<string> {
    return (await this.request({ method: 'POST', path: '/echo', headers: {}, body: Buffer.from(text) })).body.toString()
  }
}
