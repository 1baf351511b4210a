// Two connected in-process Channels (the `a` end opened the channel, `b` accepted it),
// for relay, final-hop and client tests without sockets. Frames travel through a
// `transport` hook (by default: delivered in order one event-loop turn later, as I/O
// would be), which a test may replace to delay, hold, drop, duplicate or reorder them,
// as a hostile network would. keyingMaterial is one random 32-byte value shared by both ends (a
// stand-in for the TLS exporter), so AUTH (docs/PROTOCOL.md §2.3) works in-process.
// Frames not yet delivered count as the sender's transport queue (so a transport that
// holds them is a peer that does not read), and a receiver that pauses reading holds
// what arrives until it resumes, still counted at the sender (TCP backpressure, §5.5).
import { randomBytes } from 'node:crypto'
import { CELL_SIZE } from '../../src/onion/cells/constants.js'
import { ChannelBase } from '../../src/roles/common/channel-base.js'
import type { ChannelAuthSigner, ChannelAuthVerifier } from '../../src/roles/common/channel.js'

/** one frame on its way, or the close that ends a direction */
export type MemoryFrame =
  | { kind: 'frame', from: 'a' | 'b', data: Buffer, isBinary: boolean }
  | { kind: 'close', from: 'a' | 'b', code: number, reason: string }

/** decides when (and whether) `frame` arrives: call deliver() once to hand it over */
export type MemoryTransport = (frame: MemoryFrame, deliver: () => void) => void

export const inOrder: MemoryTransport = (_frame, deliver) => { setImmediate(deliver) }

export class MemoryChannel extends ChannelBase {
  peer?: MemoryChannel
  /** frames this end sent that the transport has not delivered yet */
  queued = 0

  constructor (readonly side: 'a' | 'b', remote: string, private readonly secret: Buffer, private readonly transport: MemoryTransport, auth?: ChannelAuthVerifier) {
    super(remote, side === 'a', auth)
  }

  keyingMaterial (): Buffer { return Buffer.from(this.secret) }

  protected queuedBytes (): number { return this.queued * CELL_SIZE }

  protected write (cell: Buffer): void { this.sendFrame(Buffer.from(cell), true) }

  /** frames that arrived while this end was not reading, in order */
  private held: (() => void)[] = []

  protected setReading (on: boolean): void {
    if (!on) return
    while (!this.readingPaused && this.held.length > 0) this.held.shift()!()
  }

  /** any frame at all, unchecked (a malformed or text frame, as a hostile peer sends) */
  sendFrame (data: Buffer, isBinary = true): void {
    const peer = this.peer!
    this.queued++
    this.transport({ kind: 'frame', from: this.side, data, isBinary }, () => peer.arrive(() => {
      this.queued--
      peer.onFrame(data, isBinary)
      if (this.pendingBytes > 0) this.drained()
    }))
  }

  private arrive (take: () => void): void {
    if (this.readingPaused || this.held.length > 0) this.held.push(take)
    else take()
  }

  protected shutdown (code: number, reason: string): void {
    const peer = this.peer!
    this.transport({ kind: 'close', from: this.side, code, reason }, () => peer.finish(code, reason))
  }
}

export interface MemoryPairInit {
  /** the address `b` sees `a` at (default 127.0.0.77:40000) */
  aAddress?: string
  /** the address `a` sees `b` at (default 127.0.0.11:443) */
  bAddress?: string
  /** b checks AUTH as a relay does (without it, an AUTH closes the channel) */
  auth?: ChannelAuthVerifier
  /** a sends AUTH as its first cell, as a relay opening a channel does */
  signer?: ChannelAuthSigner
  transport?: MemoryTransport
}

/** two connected ends: `a` the initiator, `b` the accepting side */
export function memoryChannelPair (o: MemoryPairInit = {}): { a: MemoryChannel, b: MemoryChannel } {
  const secret = randomBytes(32)
  const transport = o.transport ?? inOrder
  const a = new MemoryChannel('a', o.bAddress ?? '127.0.0.11:443', secret, transport)
  const b = new MemoryChannel('b', o.aAddress ?? '127.0.0.77:40000', secret, transport, o.auth)
  a.peer = b
  b.peer = a
  if (o.signer) a.sendAuth(o.signer)
  return { a, b }
}
