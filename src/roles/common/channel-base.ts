// What every Channel does whatever carries its frames (docs/PROTOCOL.md §2): each
// incoming frame is checked (binary, exactly one 2048-byte cell, a valid header), AUTH
// (§2.3) is sent first by an authenticating initiator and checked by the accepting
// side before the next frame, and every outgoing cell is checked. A transport
// subclass only moves frames, reports its queue and closes; see ws-channel.ts.
import { EventEmitter } from 'node:events'
import { randomHex } from '../../onion/crypto/random.js'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../onion/cells/channel-cell.js'
import { encodeAuth, verifyAuth } from '../../onion/handshake/channel-auth.js'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { CLOSE, MAX_QUEUED_BYTES, type Channel, type ChannelAuthSigner, type ChannelAuthVerifier, type ChannelEvents } from './channel-types.js'

export abstract class ChannelBase extends EventEmitter<ChannelEvents> implements Channel {
  readonly id = randomHex(8)
  peerFingerprint?: string
  authenticatedPeer?: string
  closed = false
  cellsIn = 0
  cellsOut = 0

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
    if (this.queuedBytes() > MAX_QUEUED_BYTES) return this.close(CLOSE.OVERLOAD, 'send queue overflow')
    this.cellsOut++
    this.write(cell)
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
    this.emit('close', code, reason)
  }
}
