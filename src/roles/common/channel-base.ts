// What every Channel does whatever carries its frames (docs/PROTOCOL.md §2): each
// incoming frame is checked (binary, exactly one 2048-byte cell, a valid header), AUTH
// (§2.3) is sent first by an authenticating initiator and checked by the accepting
// side before the next frame, and every outgoing cell is checked. While the transport
// is full, outgoing cells wait in per-circuit queues (send-queue.ts, §5.5), each capped,
// so one circuit's backlog ends that circuit and not the channel. A transport subclass
// only moves frames, reports its queue, calls drained(), pauses reading and closes.
import { EventEmitter } from 'node:events'
import { randomHex } from '../../onion/crypto/random.js'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../onion/cells/channel-cell.js'
import { encodeAuth, verifyAuth } from '../../onion/handshake/channel-auth.js'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { CLOSE, MAX_CIRCUIT_QUEUED_BYTES, MAX_QUEUED_BYTES, SEND_HIGH_WATER, type Channel, type ChannelAuthSigner, type ChannelAuthVerifier, type ChannelEvents, type QueueAccount } from './channel-types.js'
import { SendQueue, type QueuedCircuit } from './send-queue.js'

export abstract class ChannelBase extends EventEmitter<ChannelEvents> implements Channel {
  readonly id = randomHex(8)
  peerFingerprint?: string
  authenticatedPeer?: string
  closed = false
  cellsIn = 0
  cellsOut = 0
  cellsWritten = 0
  account?: QueueAccount
  readingPaused = false
  private readonly waiting = new SendQueue()

  constructor (readonly remote: string, readonly initiator: boolean, private readonly authVerifier?: ChannelAuthVerifier) {
    super()
  }

  abstract keyingMaterial (): Buffer
  /** bytes handed to the transport and not yet written */
  protected abstract queuedBytes (): number
  /** hands one checked cell to the transport */
  protected abstract write (cell: Buffer): void
  /** asks the transport to close with this code and reason (called once) */
  protected abstract shutdown (code: number, reason: string): void
  /** stops (or restarts) reading frames from the peer */
  protected abstract setReading (on: boolean): void

  /** one frame from the transport */
  protected onFrame (data: Buffer, isBinary: boolean): void {
    if (this.closed) return
    if (!isBinary) return this.close(CLOSE.PROTOCOL, 'text frame on a cell channel')
    if (data.length !== CELL_SIZE) return this.close(CLOSE.PROTOCOL, `frame of ${data.length} bytes; cells are ${CELL_SIZE}`)
    let cell: ChannelCell
    try {
      cell = decodeChannelCell(data)
    } catch (err) {
      return this.close(CLOSE.PROTOCOL, isMarshmelloError(err) ? err.code : 'bad cell')
    }
    if (cell.cmd === ChannelCommand.AUTH) return this.onAuth(cell)
    this.cellsIn++
    this.emit('cell', cell)
  }

  /**
   * AUTH (§2.3) is verified before the next frame is read (RSA verification is
   * synchronous), so a CREATE right behind it is already judged as a relay's.
   * Only the first cell on an accepted channel may be AUTH, once.
   */
  private onAuth (cell: ChannelCell): void {
    if (this.initiator) return this.close(CLOSE.PROTOCOL, 'MM_ERR_CHANNEL_CMD: AUTH is not valid towards the initiator')
    if (!this.authVerifier) return this.close(CLOSE.PROTOCOL, 'MM_ERR_CHANNEL_CMD: this hop takes no AUTH')
    if (this.cellsIn > 0) return this.close(CLOSE.PROTOCOL, 'MM_ERR_AUTH_ORDER: AUTH must be the first cell of a channel, once')
    this.cellsIn++
    let peer: string
    try {
      peer = verifyAuth({ data: cell.data, responderFingerprint: this.authVerifier.fingerprint, exporter: this.keyingMaterial(), identityKey: this.authVerifier.identityKey })
    } catch (err) {
      const code = isMarshmelloError(err) ? err.code : 'MM_ERR_INTERNAL'
      this.emit('auth', { refused: code })
      return this.close(CLOSE.PROTOCOL, `AUTH refused: ${code}`)
    }
    this.authenticatedPeer = peer
    this.emit('auth', { peer })
  }

  /** an initiator relay proves its identity: call before the channel is handed out, so AUTH is the first cell */
  sendAuth (signer: ChannelAuthSigner): void {
    this.send(encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ identityPrivate: signer.identityPrivate, fingerprint: signer.fingerprint, responderFingerprint: signer.responderFingerprint, exporter: this.keyingMaterial() })))
  }

  send (cell: Buffer): void {
    if (this.closed) return
    if (cell.length !== CELL_SIZE) throw new MarshmelloError('MM_ERR_LENGTH', `refusing to send a ${cell.length}-byte cell`)
    this.cellsOut++
    if (this.waiting.bytes === 0 && this.queuedBytes() < SEND_HIGH_WATER) {
      this.cellsWritten++
      return this.write(cell)
    }
    const circId = cell.readUInt32BE(0)
    const laneBytes = this.waiting.push(circId, cell)
    this.account?.add(CELL_SIZE)
    if (laneBytes > MAX_CIRCUIT_QUEUED_BYTES) {
      this.dropQueued(circId)
      this.emit('overflow', circId)
      return
    }
    if (this.waiting.bytes > MAX_QUEUED_BYTES) return this.close(CLOSE.OVERLOAD, 'MM_ERR_CHANNEL_QUEUE: send queue overflow')
  }

  get pendingBytes (): number { return this.waiting.bytes }

  queuedCircuits (): QueuedCircuit[] { return this.waiting.circuits() }

  dropQueued (circId: number): number {
    const bytes = this.waiting.drop(circId)
    if (bytes) this.account?.add(-bytes)
    return bytes
  }

  /** the transport has room again: waiting cells go out, one circuit after another */
  protected drained (): void {
    while (!this.closed && this.waiting.bytes > 0 && this.queuedBytes() < SEND_HIGH_WATER) {
      const cell = this.waiting.shift()!
      this.account?.add(-CELL_SIZE)
      this.cellsWritten++
      this.write(cell)
    }
  }

  pauseReading (): void {
    if (this.readingPaused || this.closed) return
    this.readingPaused = true
    this.setReading(false)
  }

  resumeReading (): void {
    if (!this.readingPaused) return
    this.readingPaused = false
    if (!this.closed) this.setReading(true)
  }

  close (code: number = CLOSE.NORMAL, reason = 'closed'): void {
    if (this.closed) return
    this.shutdown(code, reason)
    this.finish(code, reason)
  }

  /** the channel is over (closed here, by the peer, or by the transport) */
  protected finish (code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    const freed = this.waiting.clear()
    if (freed) this.account?.add(-freed)
    this.emit('close', code, reason)
  }
}
