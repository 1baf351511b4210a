// One hop's layer in one direction (docs/PROTOCOL.md §3): AES-256-GCM under the
// hop's forward or backward key, the nonce the layer's position: the number of layers
// sealed under that key so far, which both ends count and no cell carries. Channels
// are ordered, so the opener takes exactly the next position; a cell dropped, repeated
// or reordered before this one, or altered, does not open (and its circuit ends, §4).
//
//   0      2                   2+len    2+len+16
//   +------+-------------------+--------+
//   | len  | ciphertext        | tag    |
//   +------+-------------------+--------+
//   len: u16 BE, the AAD.  nonce = 0x00000000 ‖ position (u64 BE), position 1, 2, 3, …
//   plaintext = cmd (u8) | body length (u16 BE) | body | zero padding to len
import { MarshmelloError, lengthError } from '../../errors.js'
import { aesGcmOpen, aesGcmSealInto, assertBytes } from '../crypto/primitives.js'
import { LAYER_HEADER, LAYER_PREFIX, LAYER_TAG } from './constants.js'

export enum RelayCommand {
  /** body is the next hop's layer (forward) or the previous hop's (backward) */
  FORWARD = 1,
  /** set redirection: extend the circuit by one hop (§5.2) */
  EXTEND = 2,
  EXTENDED = 3,
  /** stream data for the final hop, or back from it (§6) */
  DATA = 4,
  /** a hop reports a failure back to the client (§5.4) */
  ERROR = 5,
  /** padding the receiving hop discards */
  DROP = 6,
}

export interface OpenedLayer {
  /** the position the layer opened at (1-based) */
  position: number
  cmd: RelayCommand
  body: Buffer
}

/** positions are JavaScript integers; no circuit comes near 2^53 cells */
const LAST_POSITION = Number.MAX_SAFE_INTEGER

// Staging buffers shared by every layer of this process (JavaScript runs one seal or
// open at a time): the nonce is copied by createCipheriv, and the plaintext staging
// area is wiped after each seal. One fresh 2 KiB buffer per layer was GC time in profiles.
const NONCE = Buffer.alloc(12)
const STAGING = Buffer.alloc(0xffff)

/** 0x00000000 ‖ position as u64 BE */
function nonceFor (position: number): Buffer {
  NONCE.writeUInt32BE(Math.floor(position / 0x1_0000_0000), 4)
  NONCE.writeUInt32BE(position >>> 0, 8)
  return NONCE
}

function checkPosition (what: string, p: number): void {
  if (!Number.isSafeInteger(p) || p < 0) throw new MarshmelloError('MM_ERR_INTERNAL', `${what} position ${p} is not a count`)
}

/** total bytes of the layer starting at data[0], read from its clear prefix */
export function layerLength (data: Uint8Array): number {
  if (data.length < LAYER_PREFIX + LAYER_TAG) throw lengthError('layer', `at least ${LAYER_PREFIX + LAYER_TAG}`, data.length)
  const len = (data[0] << 8) | data[1]
  return LAYER_PREFIX + len + LAYER_TAG
}

export class LayerSealer {
  private pos = 0
  constructor (private readonly key: Buffer) {
    assertBytes('layer key', key, 32)
  }

  /** seals (cmd, body) into a layer whose sealed plaintext is `sealedLen` bytes (zero padded), at the next position */
  seal (cmd: RelayCommand, body: Uint8Array, sealedLen = LAYER_HEADER + body.length): Buffer {
    if (sealedLen < LAYER_HEADER + body.length || sealedLen > 0xffff) {
      throw lengthError('layer body', `at most ${sealedLen - LAYER_HEADER}`, body.length)
    }
    if (this.pos >= LAST_POSITION) throw new MarshmelloError('MM_ERR_INTERNAL', 'layer positions exhausted')
    const pt = STAGING.subarray(0, sealedLen)
    pt[0] = cmd
    pt.writeUInt16BE(body.length, 1)
    pt.set(body, LAYER_HEADER)
    pt.fill(0, LAYER_HEADER + body.length)
    const out = Buffer.allocUnsafe(LAYER_PREFIX + sealedLen + LAYER_TAG)
    out.writeUInt16BE(sealedLen, 0)
    try {
      aesGcmSealInto(this.key, nonceFor(this.pos + 1), pt, out.subarray(0, LAYER_PREFIX), out, LAYER_PREFIX)
    } finally {
      pt.fill(0)
    }
    this.pos += 1
    return out
  }

  /** layers sealed so far (the last position used; 0: none) */
  get position (): number { return this.pos }
  set position (p: number) { checkPosition('sealer', p); this.pos = p }
  wipe (): void { this.key.fill(0) }
}

export class LayerOpener {
  private pos = 0
  constructor (private readonly key: Buffer, position = 0) {
    assertBytes('layer key', key, 32)
    this.position = position
  }

  /**
   * Opens the layer at the start of `data` (trailing bytes are padding) at the next
   * position. Throws MM_ERR_LENGTH (truncated/oversized), MM_ERR_LAYER_AUTH (altered,
   * or not the next cell: one was dropped, repeated or reordered before it) or
   * MM_ERR_LAYER_FORMAT; on any error the position does not move.
   */
  open (data: Uint8Array): OpenedLayer {
    const total = layerLength(data)
    if (total > data.length) throw lengthError('layer', String(total), data.length)
    const buf = Buffer.from(data.buffer, data.byteOffset, total)
    const position = this.pos + 1
    const pt = aesGcmOpen(this.key, nonceFor(position), buf.subarray(LAYER_PREFIX), buf.subarray(0, LAYER_PREFIX))
    if (!pt) throw new MarshmelloError('MM_ERR_LAYER_AUTH', `layer does not open at position ${position}: altered, or a cell before it was dropped, repeated or reordered`)
    if (pt.length < LAYER_HEADER) throw new MarshmelloError('MM_ERR_LAYER_FORMAT', 'layer too short for its header')
    const cmd = pt[0]
    const blen = pt.readUInt16BE(1)
    if (!(cmd in RelayCommand)) throw new MarshmelloError('MM_ERR_LAYER_FORMAT', `unknown relay command ${cmd}`)
    if (LAYER_HEADER + blen > pt.length) throw new MarshmelloError('MM_ERR_LAYER_FORMAT', `body length ${blen} exceeds layer`)
    this.pos = position
    return { position, cmd, body: pt.subarray(LAYER_HEADER, LAYER_HEADER + blen) }
  }

  /** layers opened so far (the last position taken; 0: none) */
  get position (): number { return this.pos }
  set position (p: number) { checkPosition('opener', p); this.pos = p }
  wipe (): void { this.key.fill(0) }
}
