// One persistent link between two hops (DESIGN §3): a WebSocket over HTTPS, one
// binary message per fixed-size cell, many circuits multiplexed by circuit id.
// Outgoing channels pin the peer's certificate from the signed directory (the
// PEM is the only trust anchor and its SHA-256 must match); a relay opening one
// sends AUTH first (§2.3), which the accepting side checks here, synchronously,
// before any later cell of the channel is handled. Every frame is checked; a bad
// frame or an overfull send queue closes the channel with a reason.
import { EventEmitter } from 'node:events'
import { randomBytes, X509Certificate } from 'node:crypto'
import WebSocket from 'ws'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import { CELL_SIZE } from '../../onion/cells/constants.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell, type ChannelCell } from '../../onion/cells/channel-cell.js'
import { AUTH_EXPORTER_LABEL, AUTH_EXPORTER_LENGTH, encodeAuth, verifyAuth } from '../../onion/handshake/channel-auth.js'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'

/** the exporter's context argument: empty (RFC 8446 §7.5: the same as none) */
const EMPTY_CONTEXT = Buffer.alloc(0)

/** bytes a channel may have queued for sending before it is closed as stuck */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024

export const CLOSE = {
  PROTOCOL: 1008,
  TOO_BIG: 1009,
  OVERLOAD: 1013,
  NORMAL: 1000,
} as const

export interface ChannelEvents {
  cell: [ChannelCell]
  /** an AUTH was checked: the proven fingerprint, or the code it was refused with (the channel then closes) */
  auth: [result: { peer: string } | { refused: string }]
  close: [code: number, reason: string]
}

/** what a hop accepting channels needs to check AUTH (§2.3) */
export interface ChannelAuthVerifier {
  /** this hop's own fingerprint (the responder in the transcript) */
  fingerprint: Buffer
  /** SPKI DER of the identity key of the relay listed with this (hex) fingerprint, if any */
  identityKey: (fingerprintHex: string) => Uint8Array | undefined
}

/** what a relay opening a channel needs to send AUTH (§2.3) */
export interface ChannelAuthSigner {
  /** the relay's RSA identity key, PKCS#8 DER */
  identityPrivate: Buffer
  fingerprint: Buffer
  /** the listed fingerprint of the hop being connected to */
  responderFingerprint: Buffer
}

export class Channel extends EventEmitter<ChannelEvents> {
  readonly id = randomBytes(8).toString('hex')
  /** on channels this process opened: the fingerprint of the listed hop at the other end */
  peerFingerprint?: string
  /** on channels this process accepted: the listed relay the peer proved to be with AUTH (hex fingerprint) */
  authenticatedPeer?: string
  closed = false
  cellsIn = 0
  cellsOut = 0

  constructor (private readonly ws: WebSocket, readonly remote: string, readonly initiator: boolean, private readonly authVerifier?: ChannelAuthVerifier) {
    super()
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary))
    ws.on('close', (code, reason) => this.finish(code, reason.toString()))
    ws.on('error', (err) => this.finish(CLOSE.PROTOCOL, `socket error: ${(err as NodeJS.ErrnoException).code ?? 'error'}`))
  }

  private onFrame (data: Buffer, isBinary: boolean): void {
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
    if (this.initiator) return this.close(CLOSE.PROTOCOL, 'MM_ERR_LINK_CMD: AUTH is not valid towards the initiator')
    if (!this.authVerifier) return this.close(CLOSE.PROTOCOL, 'MM_ERR_LINK_CMD: this hop takes no AUTH')
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

  /** sends one whole cell; closes the channel when the peer does not keep up */
  send (cell: Buffer): void {
    if (this.closed) return
    if (cell.length !== CELL_SIZE) throw new MarshmelloError('MM_ERR_LENGTH', `refusing to send a ${cell.length}-byte cell`)
    if (this.ws.bufferedAmount > MAX_QUEUED_BYTES) return this.close(CLOSE.OVERLOAD, 'send queue overflow')
    this.cellsOut++
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
    const socket = (this.ws as unknown as { _socket?: { cork (): void, uncork (): void, destroyed: boolean } })._socket
    if (!socket || socket.destroyed) return
    this.corked = true
    socket.cork()
    process.nextTick(() => {
      this.corked = false
      if (!socket.destroyed) socket.uncork()
    })
  }

  close (code: number = CLOSE.NORMAL, reason = 'closed'): void {
    if (this.closed) return
    try { this.ws.close(code, reason.slice(0, 120)) } catch { this.ws.terminate() }
    // a peer that ignores the close handshake is cut off
    setTimeout(() => this.ws.terminate(), 2000).unref()
    this.finish(code, reason)
  }

  private finish (code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    this.emit('close', code, reason)
  }
}

/**
 * wraps a WebSocket a server accepted; with `auth`, an AUTH from a listed relay marks the
 * channel `authenticatedPeer` (without it, an AUTH closes the channel: the hop takes none)
 */
export function acceptChannel (ws: WebSocket, remote: string, o: { auth?: ChannelAuthVerifier } = {}): Channel {
  return new Channel(ws, remote, false, o.auth)
}

export interface ConnectInit {
  host: string
  port: number
  /** PEM from the peer's signed descriptor */
  tlsCert: string
  /** hex SHA-256 of that certificate's DER */
  tlsFingerprint: string
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
    const tlsOptions: ConnectionOptions = {
      ca: [init.tlsCert],
      // the certificate is the pinned trust anchor; its name is irrelevant, its hash is not
      checkServerIdentity: (_host, cert) => {
        const fp = new X509Certificate(cert.raw).fingerprint256.replace(/:/g, '').toLowerCase()
        return fp === init.tlsFingerprint ? undefined : new Error('certificate does not match the pinned fingerprint')
      },
    }
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
      const ch = new Channel(ws, `${init.host}:${init.port}`, true)
      if (init.auth) {
        // sent before the channel is handed out, so it is the first cell on the wire
        try {
          const a = init.auth
          ch.send(encodeChannelCell(1, ChannelCommand.AUTH, encodeAuth({ identityPrivate: a.identityPrivate, fingerprint: a.fingerprint, responderFingerprint: a.responderFingerprint, exporter: ch.keyingMaterial() })))
        } catch (err) {
          ch.close(CLOSE.PROTOCOL, 'cannot send AUTH')
          return reject(new MarshmelloError('MM_ERR_UNREACHABLE', `cannot authenticate the channel to ${init.host}:${init.port}: ${isMarshmelloError(err) ? err.code : (err as Error).message}`))
        }
      }
      resolve(ch)
    })
  })
}
