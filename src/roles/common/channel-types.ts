// The Channel interface (docs/PROTOCOL.md §2): one persistent channel between two hops,
// whole cells in and out, many circuits multiplexed by circuit id, closed with a code and
// a reason; with its events, close codes and the AUTH (§2.3) roles. Types and constants
// only, so every implementation can import it without a cycle; channel.ts is the face.
import type { EventEmitter } from 'node:events'
import type { ChannelCell } from '../../onion/cells/channel-cell.js'

/** bytes a channel may have queued for sending before it is closed as stuck */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024

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
  /** sends one whole cell (CELL_SIZE bytes); closes the channel when the peer does not keep up */
  send (cell: Buffer): void
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
