// One hop's state for one circuit (docs/PROTOCOL.md §4): the forward opener and the
// backward sealer, each with its position (the layers opened or sealed so far, the
// nonces of §3), and where the circuit continues. Serialised to a fixed 117-byte record
// (HOP_RECORD_SIZE) for a SessionStore so that relays can keep circuits in a bounded
// cache or a shared store.
//
//   version (u8 = 2) | forward key (32) | backward key (32) | forward position (u64)
//   | backward position (u64) | next circuit id (u32, 0 = none) | next fingerprint (32)
import { MarshmelloError, lengthError } from '../../errors.js'
import { CELL_DATA, LAYER_HEADER, LAYER_OVERHEAD, BACKWARD_BODY } from '../cells/constants.js'
import { LayerOpener, LayerSealer, RelayCommand, layerLength, type OpenedLayer } from '../cells/layer.js'
import type { HopKeys } from '../handshake/oaep-x25519.js'
import { sha256 } from '../crypto/primitives.js'

export const HOP_RECORD_VERSION = 2
export const HOP_RECORD_SIZE = 1 + 32 + 32 + 8 + 8 + 4 + 32

/** positions as u64 BE (they stay below 2^53) */
function writePosition (out: Buffer, p: number, o: number): void {
  out.writeUInt32BE(Math.floor(p / 0x1_0000_0000), o)
  out.writeUInt32BE(p >>> 0, o + 4)
}

function readPosition (b: Buffer, o: number): number {
  const hi = b.readUInt32BE(o)
  if (hi >= 0x200000) throw new MarshmelloError('MM_ERR_LENGTH', 'hop record position beyond 2^53')
  return hi * 0x1_0000_0000 + b.readUInt32BE(o + 4)
}

export class HopState {
  readonly forward: LayerOpener
  readonly backward: LayerSealer
  nextCircId = 0
  nextFingerprint: Buffer | null = null

  constructor (private readonly keys: HopKeys, forwardPosition = 0, backwardPosition = 0) {
    this.forward = new LayerOpener(keys.forward, forwardPosition)
    this.backward = new LayerSealer(keys.backward)
    this.backward.position = backwardPosition
  }

  /** peels this hop's forward layer from a cell's data: only the circuit's next forward cell opens (§3) */
  peel (data: Buffer): OpenedLayer {
    return this.forward.open(data)
  }

  /** a backward layer this hop originates (EXTENDED, ERROR, DATA at the final hop); fixed size */
  originate (cmd: RelayCommand, body: Uint8Array): Buffer {
    if (body.length > BACKWARD_BODY) throw lengthError('backward body', `at most ${BACKWARD_BODY}`, body.length)
    return this.backward.seal(cmd, body, LAYER_HEADER + BACKWARD_BODY)
  }

  /** wraps the layer a later hop sent back (the start of `data`; the rest is padding) */
  wrapBackward (data: Buffer): Buffer {
    // both checks come before seal(), so a refused cell takes no backward position
    const len = layerLength(data)
    if (len > data.length) throw lengthError('backward layer', String(len), data.length)
    if (len + LAYER_OVERHEAD > CELL_DATA) throw new MarshmelloError('MM_ERR_LENGTH', 'backward cell has too many layers')
    return this.backward.seal(RelayCommand.FORWARD, data.subarray(0, len))
  }

  /**
   * The record, written into `out` when given (HOP_RECORD_SIZE bytes, overwritten
   * whole): a relay serialises after every cell into one reused buffer, since
   * SessionStore.set copies what it is given before returning.
   */
  serialize (out = Buffer.alloc(HOP_RECORD_SIZE)): Buffer {
    if (out.length !== HOP_RECORD_SIZE) throw lengthError('hop record buffer', String(HOP_RECORD_SIZE), out.length)
    let o = 0
    out[o++] = HOP_RECORD_VERSION
    o += this.keys.forward.copy(out, o)
    o += this.keys.backward.copy(out, o)
    writePosition(out, this.forward.position, o); o += 8
    writePosition(out, this.backward.position, o); o += 8
    out.writeUInt32BE(this.nextCircId, o); o += 4
    if (this.nextFingerprint) this.nextFingerprint.copy(out, o)
    else out.fill(0, o)
    return out
  }

  /** Throws MM_ERR_LENGTH unless `rec` is a HOP_RECORD_SIZE-byte record of this version. */
  static deserialize (rec: Uint8Array): HopState {
    if (rec.length !== HOP_RECORD_SIZE || rec[0] !== HOP_RECORD_VERSION) throw lengthError(`hop record (version ${HOP_RECORD_VERSION})`, String(HOP_RECORD_SIZE), rec.length)
    const b = Buffer.from(rec.buffer, rec.byteOffset, rec.length)
    let o = 1
    const forward = Buffer.from(b.subarray(o, o + 32)); o += 32
    const backward = Buffer.from(b.subarray(o, o + 32)); o += 32
    const fwdPos = readPosition(b, o); o += 8
    const backPos = readPosition(b, o); o += 8
    const s = new HopState({ forward, backward }, fwdPos, backPos)
    s.nextCircId = b.readUInt32BE(o); o += 4
    const fp = b.subarray(o, o + 32)
    s.nextFingerprint = s.nextCircId ? Buffer.from(fp) : null
    return s
  }

  /** names the circuit's keys without revealing them (a relay's floor of reserved positions, PROTOCOL §4.1) */
  get keyTag (): string { return (this.tag ??= sha256(this.keys.forward, this.keys.backward).toString('base64').slice(0, 22)) }
  private tag?: string

  wipe (): void { this.forward.wipe(); this.backward.wipe() }
}
