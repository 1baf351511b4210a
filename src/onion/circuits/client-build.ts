// Building a client circuit as a pure state machine (docs/PROTOCOL.md §5.1, §5.2,
// §5.4): CREATE to hop 1, then one EXTEND per further hop through the last hop built.
// Each call takes one event (a CREATED, RELAY or DESTROY cell of this circuit, or a
// timeout the caller's timer signalled) and returns what to do next: send this cell,
// wait, done, or failed, with the hop to blame only where the failure is evidence against
// that hop (a hop's own authenticated answer, or hop 1 not answering CREATE); a timeout or
// tampering past hop 1 could be any earlier hop's doing, so it blames none (Tor's path-spec
// §7, path bias: a guard that fails circuits must not steer the client's choice of later
// hops). No sockets, no timers, no retries.
import { type ErrorCode, MarshmelloError } from '../../errors.js'
import { ChannelCommand } from '../cells/channel-cell.js'
import { RelayCommand } from '../cells/layer.js'
import { HopError, decodeError, encodeExtend } from '../cells/relay-msg.js'
import { clientFinish, clientStart, type ClientHandshakeState } from '../handshake/oaep-x25519.js'
import type { Descriptor } from '../directory/descriptor.js'
import { ClientOnion } from './client-onion.js'
import { hopErrorMeaning, hopErrorName } from './hop-error.js'

/** what the build needs of a hop's descriptor */
export type BuildHop = Pick<Descriptor, 'nickname' | 'role' | 'fingerprint' | 'identityKey' | 'host' | 'port'>

export type BuildAction =
  /** send this channel cell on the circuit, then wait for its answer (with a timeout) */
  | { kind: 'send', cmd: ChannelCommand.CREATE | ChannelCommand.RELAY, data: Buffer }
  /** the event changed nothing (not for the build) */
  | { kind: 'wait' }
  /** every hop is built; the onion holds their keys */
  | { kind: 'done' }
  /**
   * the build is over. `hop` is the 1-based hop to blame, 0 when the failure is no
   * evidence against any one hop; `at` is the hop being added when it stopped (so `at`
   * ≥ 2: the first hop answered, which path-bias accounting counts). `destroy`: send
   * DESTROY for the circuit (false when the relay already dropped it or the id was never ours)
   */
  | { kind: 'failed', hop: number, at: number, code: ErrorCode, message: string, destroy: boolean }

export type BuildState = 'new' | 'creating' | 'extending' | 'done' | 'failed'

type Start = ReturnType<typeof clientStart>

export const describeHop = (d: BuildHop, i: number): string =>
  `hop ${i} (${d.nickname || d.role} ${d.fingerprint.slice(0, 8)} at ${d.host}:${d.port})`

const NOT_THE_KEY = 'failed authentication: it does not hold the identity key listed in the consensus'

export class ClientBuild {
  private st: BuildState = 'new'
  /** the hop being added (1-based) */
  private at = 0
  /** the handshake of the hop being added, until its answer comes */
  private pending: Start | null = null
  /** the next hop's handshake, made while the current hop's answer is on its way */
  private prepared: { hop: number, start: Start } | null = null

  constructor (readonly path: readonly BuildHop[], readonly onion = new ClientOnion()) {
    if (path.length < 1) throw new MarshmelloError('MM_ERR_CIRCUIT', 'a circuit needs at least one hop')
  }

  get state (): BuildState { return this.st }
  /** the hop being added (1-based; 0 before start) */
  get hop (): number { return this.at }

  /** the first action: CREATE to hop 1 */
  start (): BuildAction {
    if (this.st !== 'new') throw new Error(`start() in state ${this.st}`)
    this.st = 'creating'
    this.at = 1
    this.pending = this.handshakeFor(1)
    return { kind: 'send', cmd: ChannelCommand.CREATE, data: this.pending.create }
  }

  /**
   * Makes the next hop's handshake now (an X25519 key and an RSA encryption), so it is
   * ready when the current hop answers. The caller runs it once the cell it just sent
   * has left; doing nothing is also correct, only slower.
   */
  prepareNext (): void {
    if ((this.st !== 'creating' && this.st !== 'extending') || this.prepared !== null) return
    const next = this.at + 1
    if (next <= this.path.length) this.prepared = { hop: next, start: this.start1(next) }
  }

  /** a CREATED, RELAY or DESTROY cell arrived for this circuit */
  onCell (cmd: ChannelCommand, data: Buffer): BuildAction {
    if (this.st === 'creating') {
      if (cmd === ChannelCommand.DESTROY) return this.refusedCreate(data[0])
      if (cmd === ChannelCommand.CREATED) return this.finishHop(data)
      return { kind: 'wait' }
    }
    if (this.st === 'extending') {
      // hop 1 tore the circuit down, passing back the reason it was given: any hop may have
      // started it, so it is no evidence against hop 1 (nor the hop being added)
      if (cmd === ChannelCommand.DESTROY) return this.fail(0, data[0] === HopError.INTEGRITY ? 'MM_ERR_CIRCUIT_INTEGRITY' : 'MM_ERR_CIRCUIT_CLOSED', `circuit torn down (${hopErrorName(data[0])})`, false, false)
      if (cmd === ChannelCommand.RELAY) return this.onRelay(data)
      return { kind: 'wait' }
    }
    return { kind: 'wait' } // before start, or after the build ended: nothing is awaited
  }

  /**
   * The caller's timer for the current step ran out. Hop 1 not answering CREATE is blamed
   * on hop 1. An unanswered EXTEND blames no hop: any hop before the one being added may
   * have withheld the EXTEND or its answer, and blaming the later hop would let a hostile
   * guard make the client avoid the honest relays it does not want (path-spec §7).
   */
  onTimeout (): BuildAction {
    if (this.st === 'creating') return this.fail(1, 'MM_ERR_CIRCUIT_BUILD', 'did not answer CREATE in time')
    if (this.st === 'extending') return this.fail(0, 'MM_ERR_CIRCUIT_BUILD', `was not reached in time (hops 1..${this.at - 1} may be holding the EXTEND or its answer; no hop is blamed)`)
    return { kind: 'wait' }
  }

  /** stops the build (the circuit died under it) and erases every handshake secret */
  abort (): void {
    if (this.st === 'creating' || this.st === 'extending' || this.st === 'new') this.st = 'failed'
    this.wipe()
  }

  private onRelay (data: Buffer): BuildAction {
    let u
    try {
      u = this.onion.unwrapBackward(data)
    } catch {
      // not the next backward cell of some hop (§3): one was dropped, repeated, reordered or
      // altered, by any hop before this one: no hop is blamed
      return this.fail(0, 'MM_ERR_CIRCUIT_INTEGRITY', 'was not extended to: a backward cell did not open at its position (PROTOCOL §4)')
    }
    if (u.cmd === RelayCommand.ERROR) {
      let reason = 'malformed ERROR'
      let code: ErrorCode = 'MM_ERR_CIRCUIT_BUILD'
      try {
        const e = decodeError(u.body)
        reason = e.reason
        code = hopErrorMeaning(e.code)?.onExtend ?? code
      } catch {}
      // the hop before the one being added reports, under its own layer, that it could not
      // reach it: its word is the evidence. An ERROR from any other hop is about that hop
      return this.fail(u.hop === this.at - 1 ? this.at : u.hop, code, `could not be reached from hop ${u.hop}: ${reason}`)
    }
    // an answer the wrong hop originated (authenticated by its layer) is evidence against that hop
    if (u.cmd !== RelayCommand.EXTENDED || u.hop !== this.at - 1) {
      return this.fail(u.hop, 'MM_ERR_CIRCUIT_BUILD', `was not extended to: unexpected answer ${RelayCommand[u.cmd] ?? u.cmd} from hop ${u.hop}`)
    }
    return this.finishHop(u.body)
  }

  private refusedCreate (reason: number): BuildAction {
    const code = hopErrorMeaning(reason)?.onCreate ?? 'MM_ERR_CIRCUIT_BUILD'
    // an id in use belongs to someone else's circuit at the relay: no DESTROY for it
    if (code === 'MM_ERR_CIRCUIT_ID_IN_USE') return this.fail(1, code, 'refused the circuit id: in use from this address', false)
    if (code === 'MM_ERR_HOP_AUTH') return this.fail(1, code, 'failed authentication: it could not open a handshake sealed to the identity key listed in the consensus')
    return this.fail(1, code, `refused the circuit (${hopErrorName(reason)})`)
  }

  /** CREATED (hop 1) or EXTENDED (later hops) came: finish the handshake, then go on */
  private finishHop (created: Buffer): BuildAction {
    const d = this.path[this.at - 1]
    const hs = this.pending!
    this.pending = null
    try {
      this.onion.addHop(Buffer.from(d.fingerprint, 'hex'), clientFinish(hs.state, created))
    } catch {
      return this.fail(this.at, 'MM_ERR_HOP_AUTH', NOT_THE_KEY)
    }
    if (this.at === this.path.length) {
      this.st = 'done'
      return { kind: 'done' }
    }
    this.st = 'extending'
    this.at++
    const next = this.path[this.at - 1]
    this.pending = this.handshakeFor(this.at)
    const body = encodeExtend({ fingerprint: Buffer.from(next.fingerprint, 'hex'), host: next.host, port: next.port, create: this.pending.create })
    return { kind: 'send', cmd: ChannelCommand.RELAY, data: this.onion.wrapForward(this.at - 1, RelayCommand.EXTEND, body) }
  }

  /** hop i's handshake: the one prepared ahead, or a new one */
  private handshakeFor (i: number): Start {
    const p = this.prepared
    this.prepared = null
    if (p?.hop === i) return p.start
    if (p) erase(p.start.state)
    return this.start1(i)
  }

  private start1 (i: number): Start {
    return clientStart({ identityKey: Buffer.from(this.path[i - 1].identityKey, 'base64') })
  }

  private fail (hop: number, code: ErrorCode, what: string, destroy = true, prefix = true): BuildAction {
    this.st = 'failed'
    this.wipe()
    const at = this.at
    const message = prefix ? `${describeHop(this.path[at - 1], at)} ${what}` : what
    return { kind: 'failed', hop, at, code, message, destroy }
  }

  private wipe (): void {
    if (this.pending) erase(this.pending.state)
    if (this.prepared) erase(this.prepared.start.state)
    this.pending = null
    this.prepared = null
  }
}

/** a handshake that will never finish: its secrets are erased (P5) */
function erase (s: ClientHandshakeState): void {
  s.eph.dispose()
  s.s.fill(0)
}
