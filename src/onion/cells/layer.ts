// One hop's layer in one direction (docs/PROTOCOL.md §3): AES-256-GCM under the
// hop's forward or backward key, nonce from a per-direction counter, and a
// replay window on the opening side. The sealer lives on the side that adds the
// layer (client forward, hop backward); the opener on the side that peels it.
//
//   0      8       10                  10+len   10+len+16
//   +------+-------+-------------------+--------+
//   | ctr  | len   | ciphertext        | tag    |
//   +------+-------+-------------------+--------+
//   ctr: u64 BE (nonce = 0x00000000 ‖ ctr), len: u16 BE; both are AAD.
//   plaintext = cmd (u8) | body length (u16 BE) | body | zero padding to len
import { MarshmelloError, lengthError } from '../../errors.js'
import { aesGcmOpen, aesGcmSealInto, assertBytes } from '../crypto/primitives.js'
import { LAYER_HEADER, LAYER_PREFIX, LAYER_TAG } from './constants.js'
import { ReplayWindow } from './replay-window.js'

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
  ctr: bigint
  cmd: RelayCommand
  body: Buffer
}

// Staging buffers shared by every layer of this process (JavaScript runs one seal or
// open at a time): the nonce is copied by createCipheriv, and the plaintext staging
// area is wiped after each seal. One fresh 2 KiB buffer per layer was GC time in profiles.
const NONCE = Buffer.alloc(12)
const STAGING = Buffer.alloc(0xffff)

function nonceFor (ctr: bigint): Buffer {
  NONCE.writeBigUInt64BE(ctr, 4)
  return NONCE
}

/** total bytes of the layer starting at data[0], read from its clear prefix */
export function layerLength (data: Uint8Array): number {
  if (data.length < LAYER_PREFIX + LAYER_TAG) throw lengthError('layer', `at least ${LAYER_PREFIX + LAYER_TAG}`, data.length)
  const len = (data[8] << 8) | data[9]
  return LAYER_PREFIX + len + LAYER_TAG
}

export class LayerSealer {
  private ctr = 0n
  constructor (private readonly key: Buffer) {
    assertBytes('layer key', key, 32)
  }

  /** seals (cmd, body) into a layer whose sealed plaintext is `sealedLen` bytes (zero padded) */
  seal (cmd: RelayCommand, body: Uint8Array, sealedLen = LAYER_HEADER + body.length): Buffer {
    if (sealedLen < LAYER_HEADER + body.length || sealedLen > 0xffff) {
      throw lengthError('layer body', `at most ${sealedLen - LAYER_HEADER}`, body.length)
    }
    const pt = STAGING.subarray(0, sealedLen)
    pt[0] = cmd
    pt.writeUInt16BE(body.length, 1)
    pt.set(body, LAYER_HEADER)
    pt.fill(0, LAYER_HEADER + body.length)
    this.ctr += 1n
    const out = Buffer.allocUnsafe(LAYER_PREFIX + sealedLen + LAYER_TAG)
    out.writeBigUInt64BE(this.ctr, 0)
    out.writeUInt16BE(sealedLen, 8)
    try {
      aesGcmSealInto(this.key, nonceFor(this.ctr), pt, out.subarray(0, LAYER_PREFIX), out, LAYER_PREFIX)
    } finally {
      pt.fill(0)
    }
    return out
  }

  get counter (): bigint { return this.ctr }
  set counter (v: bigint) { this.ctr = v }
  wipe (): void { this.key.fill(0) }
}

export class LayerOpener {
  constructor (private readonly key: Buffer, readonly window = new ReplayWindow()) {
    assertBytes('layer key', key, 32)
  }

  /**
   * Opens the layer at the start of `data` (trailing bytes are padding).
   * Throws MM_ERR_LENGTH (truncated/oversized), MM_ERR_REPLAY (counter seen or
   * stale), MM_ERR_LAYER_AUTH (tampered) or MM_ERR_LAYER_FORMAT; on any error
   * no state changes.
   */
  open (data: Uint8Array): OpenedLayer {
    const total = layerLength(data)
    if (total > data.length) throw lengthError('layer', String(total), data.length)
    const buf = Buffer.from(data.buffer, data.byteOffset, total)
    const ctr = buf.readBigUInt64BE(0)
    if (!this.window.check(ctr)) throw new MarshmelloError('MM_ERR_REPLAY', `cell counter ${ctr} replayed or outside the window`)
    const pt = aesGcmOpen(this.key, nonceFor(ctr), buf.subarray(LAYER_PREFIX), buf.subarray(0, LAYER_PREFIX))
    if (!pt) throw new MarshmelloError('MM_ERR_LAYER_AUTH', 'layer failed authentication')
    if (pt.length < LAYER_HEADER) throw new MarshmelloError('MM_ERR_LAYER_FORMAT', 'layer too short for its header')
    const cmd = pt[0]
    const blen = pt.readUInt16BE(1)
    if (!(cmd in RelayCommand)) throw new MarshmelloError('MM_ERR_LAYER_FORMAT', `unknown relay command ${cmd}`)
    if (LAYER_HEADER + blen > pt.length) throw new MarshmelloError('MM_ERR_LAYER_FORMAT', `body length ${blen} exceeds layer`)
    this.window.commit(ctr)
    return { ctr, cmd, body: pt.subarray(LAYER_HEADER, LAYER_HEADER + blen) }
  }

  wipe (): void { this.key.fill(0) }
}
