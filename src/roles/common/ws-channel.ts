// The Channel over a WebSocket over HTTPS (docs/PROTOCOL.md §2): one binary message
// per cell. Outgoing channels pin the peer's certificate from the signed directory
// (the PEM is the only trust anchor and its SHA-256 must match); keyingMaterial is
// the TLS 1.3 exporter (§2.3). Frame checks, AUTH and the per-circuit send queues are
// ChannelBase's; here the socket's 'drain' tells it when there is room again, and
// pausing reading pauses the socket (TCP then pushes back on the peer, §5.5).
import WebSocket from 'ws'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { AUTH_EXPORTER_LABEL, AUTH_EXPORTER_LENGTH } from '../../onion/handshake/channel-auth.js'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { ChannelBase } from './channel-base.js'
import { pinnedClientTls } from './link-tls.js'
import { CLOSE, type Channel, type ChannelAuthSigner, type ChannelAuthVerifier } from './channel-types.js'

/** the exporter's context argument: empty (RFC 8446 §7.5: the same as none) */
const EMPTY_CONTEXT = Buffer.alloc(0)

class WsChannel extends ChannelBase {
  constructor (private readonly ws: WebSocket, remote: string, initiator: boolean, authVerifier?: ChannelAuthVerifier) {
    super(remote, initiator, authVerifier)
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary))
    ws.on('close', (code, reason) => this.finish(code, reason.toString()))
    ws.on('error', (err) => this.finish(CLOSE.PROTOCOL, `socket error: ${(err as NodeJS.ErrnoException).code ?? 'error'}`))
    this.socket()?.on('drain', () => this.drained())
  }

  private socket (): (TLSSocket & { destroyed: boolean }) | undefined {
    return (this.ws as unknown as { _socket?: TLSSocket & { destroyed: boolean } })._socket
  }

  protected setReading (on: boolean): void {
    if (on) this.ws.resume()
    else this.ws.pause()
  }

  /**
   * This TLS connection's exporter value for AUTH (RFC 8446 §7.5): both ends
   * of one connection compute the same bytes, any other connection different ones.
   */
  keyingMaterial (): Buffer {
    const socket = (this.ws as unknown as { _socket?: TLSSocket })._socket
    // TLS 1.3 only: its exporter is bound to the whole handshake (a TLS 1.2 one is only
    // as good as the extended master secret); both ends are Marshmello hops on Node
    if (!socket || typeof socket.exportKeyingMaterial !== 'function' || socket.getProtocol() !== 'TLSv1.3') {
      throw new MarshmelloError('MM_ERR_AUTH_TLS', 'AUTH needs the channel to run over TLS 1.3')
    }
    return socket.exportKeyingMaterial(AUTH_EXPORTER_LENGTH, AUTH_EXPORTER_LABEL, EMPTY_CONTEXT)
  }

  protected queuedBytes (): number { return this.ws.bufferedAmount }

  protected write (cell: Buffer): void {
    this.cork()
    this.ws.send(cell, { binary: true })
  }

  private corked = false
  /**
   * Cells sent in the same tick leave in one write: the socket stays corked until the
   * tick ends (ws corks per frame too; Node counts corks, so the last uncork flushes).
   * Profiles showed one writev per cell as the largest cost of a busy relay.
   */
  private cork (): void {
    if (this.corked) return
    const socket = this.socket()
    if (!socket || socket.destroyed) return
    this.corked = true
    socket.cork()
    process.nextTick(() => {
      this.corked = false
      if (socket.destroyed) return
      socket.uncork()
      // the cells written this tick may have left room below the high-water mark
      if (this.pendingBytes > 0) this.drained()
    })
  }

  protected shutdown (code: number, reason: string): void {
    try { this.ws.close(code, reason.slice(0, 120)) } catch { this.ws.terminate() }
    // a peer that ignores the close handshake is cut off
    setTimeout(() => this.ws.terminate(), 2000).unref()
  }
}

/**
 * wraps a WebSocket a server accepted; with `auth`, an AUTH from a listed relay marks the
 * channel `authenticatedPeer` (without it, an AUTH closes the channel: the hop takes none)
 */
export function acceptChannel (ws: WebSocket, remote: string, o: { auth?: ChannelAuthVerifier } = {}): Channel {
  return new WsChannel(ws, remote, false, o.auth)
}

export interface ConnectInit {
  host: string
  port: number
  /** PEM from the peer's signed descriptor */
  tlsCert: string
  /** hex SHA-256 of that certificate's DER */
  tlsFingerprint: string
  /** the next certificate the descriptor lists ahead of a rotation (§2.1), accepted too */
  tlsNextCert?: string
  tlsNextFingerprint?: string
  /** source address to connect from (a client on its own address, P1 tests) */
  localAddress?: string
  timeoutMs?: number
  /** a relay's identity: AUTH is sent as the channel's first cell (clients never pass it) */
  auth?: ChannelAuthSigner
}

/** opens a channel to a listed hop, verifying its pinned certificate */
export function connectChannel (init: ConnectInit): Promise<Channel> {
  const url = `wss://${init.host.includes(':') ? `[${init.host}]` : init.host}:${init.port}/channel`
  return new Promise((resolve, reject) => {
    const tlsOptions: ConnectionOptions = pinnedClientTls(init)
    const ws = new WebSocket(url, {
      ...(tlsOptions as WebSocket.ClientOptions),
      localAddress: init.localAddress,
      maxPayload: CELL_SIZE,
      handshakeTimeout: init.timeoutMs ?? 10_000,
      perMessageDeflate: false,
      // Masking exists for browsers (RFC 6455 §10.3: script-chosen bytes must not look
      // like HTTP to a proxy). A channel carries only ciphertext cells inside TLS with a
      // pinned certificate, so there is no intermediary to confuse: an all-zero mask lets
      // both ends skip the XOR over every 2 KiB frame (docs/PROTOCOL.md §2).
      generateMask: (mask: Buffer) => { mask.fill(0) },
    })
    const fail = (err: Error) => {
      ws.removeAllListeners()
      ws.on('error', () => {})
      ws.terminate()
      reject(new MarshmelloError('MM_ERR_UNREACHABLE', `cannot open a channel to ${init.host}:${init.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`))
    }
    ws.once('error', fail)
    ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)))
    ws.once('open', () => {
      ws.removeListener('error', fail)
      const ch = new WsChannel(ws, `${init.host}:${init.port}`, true)
      if (init.auth) {
        // sent before the channel is handed out, so it is the first cell on the wire
        try {
          ch.sendAuth(init.auth)
        } catch (err) {
          ch.close(CLOSE.PROTOCOL, 'cannot send AUTH')
          return reject(new MarshmelloError('MM_ERR_UNREACHABLE', `cannot authenticate the channel to ${init.host}:${init.port}: ${isMarshmelloError(err) ? err.code : (err as Error).message}`))
        }
      }
      resolve(ch)
    })
  })
}
