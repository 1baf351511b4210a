// The Channel interface (docs/PROTOCOL.md §2): one persistent channel between two hops,
// whole cells in and out, many circuits multiplexed by circuit id, closed with a code and
// a reason; with its events, close codes and the AUTH (§2.3) roles. Types and constants
// only, so every implementation can import it without a cycle; channel.ts is the face.
import type { EventEmitter } from 'node:events'
import type { ChannelCell } from '../../onion/cells/channel-cell.js'
import type { QueuedCircuit } from './send-queue.js'

/**
 * Cells a channel may hold for sending in all (its per-circuit queues, §5.5) before it
 * is closed as stuck: a last resort, well above one circuit's share, since each circuit
 * is capped on its own first and a relay's memory budget ends circuits before this.
 */
export const MAX_QUEUED_BYTES = 32 * 1024 * 1024

/** cells one circuit may have waiting on one channel; beyond it that circuit alone ends (§5.5) */
export const MAX_CIRCUIT_QUEUED_BYTES = 2 * 1024 * 1024

/** bytes in the transport (socket buffers) above which cells wait in the per-circuit queues */
export const SEND_HIGH_WATER = 256 * 1024

/** a shared count of bytes waiting in send queues, across the channels of one process (the relay's memory budget) */
export interface QueueAccount { add (delta: number): void }

/** close codes (the WebSocket ones, RFC 6455 §7.4.1) */
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
  /** the circuit's cells waiting on this channel passed MAX_CIRCUIT_QUEUED_BYTES and were dropped: its owner ends it (§5.5) */
  overflow: [circId: number]
}

export interface Channel extends EventEmitter<ChannelEvents> {
  /** random, local to this process */
  readonly id: string
  /** the peer's address as `host:port` */
  readonly remote: string
  /** true on channels this process opened */
  readonly initiator: boolean
  /** on channels this process opened: the fingerprint of the listed hop at the other end */
  peerFingerprint?: string
  /** on channels this process accepted: the listed relay the peer proved to be with AUTH (hex fingerprint) */
  readonly authenticatedPeer?: string
  readonly closed: boolean
  /** cells received (AUTH included) and sent */
  readonly cellsIn: number
  readonly cellsOut: number
  /**
   * sends one whole cell (CELL_SIZE bytes). While the transport is full the cell waits in
   * its circuit's queue (§5.5): a circuit over its cap is dropped ('overflow'), and the
   * channel closes only when all its queues together pass MAX_QUEUED_BYTES
   */
  send (cell: Buffer): void
  /** bytes waiting in this channel's per-circuit queues */
  readonly pendingBytes: number
  /** cells handed to the transport so far (a stalled peer makes no progress here) */
  readonly cellsWritten: number
  /** the circuits with cells waiting here, with the age (sequence) of their oldest */
  queuedCircuits (): QueuedCircuit[]
  /** drops the cells waiting for one circuit (it ended); returns the bytes freed */
  dropQueued (circId: number): number
  /** counts this channel's waiting bytes into a process-wide account (set once, before use) */
  account?: QueueAccount
  /** backpressure: stop reading cells from the peer until resumeReading() */
  pauseReading (): void
  resumeReading (): void
  readonly readingPaused: boolean
  close (code?: number, reason?: string): void
  /** the value both ends of this one connection derive for AUTH (the TLS exporter, §2.3) */
  keyingMaterial (): Buffer
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
