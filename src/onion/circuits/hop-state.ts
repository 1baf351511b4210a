// One hop's state for one circuit (docs/PROTOCOL.md §4): the forward opener (with
// its replay window), the backward sealer (with its counter), and where the
// circuit continues. Serialised to a fixed 245-byte record (HOP_RECORD_SIZE) for a SessionStore so
// that relays can keep circuits in a bounded cache or a shared store.
//
//   version (u8 = 1) | forward key (32) | backward key (32) | window (8 + 128)
//   | backward counter (u64) | next circuit id (u32, 0 = none) | next fingerprint (32)
import { MarshmelloError, lengthError } from '../../errors.js'
import { CELL_DATA, LAYER_HEADER, LAYER_OVERHEAD, BACKWARD_BODY } from '../cells/constants.js'
import { LayerOpener, LayerSealer, RelayCommand, layerLength, type OpenedLayer } from '../cells/layer.js'
import { ReplayWindow } from '../cells/replay-window.js'
import type { HopKeys } from '../handshake/oaep-x25519.js'

export const HOP_RECORD_SIZE = 1 + 32 + 32 + ReplayWindow.SERIALIZED + 8 + 4 + 32

export class HopState {
  readonly forward: LayerOpener
  readonly backward: LayerSealer
  nextCircId = 0
  nextFingerprint: Buffer | null = null

  constructor (private readonly keys: HopKeys, window?: ReplayWindow, backCtr = 0n) {
    this.forward = new LayerOpener(keys.forward, window)
    this.backward = new LayerSealer(keys.backward)
    this.backward.counter = backCtr
  }

  /** peels this hop's forward layer from a cell's data */
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
    // both checks come before seal(), so a refused cell consumes no backward counter
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
    out[o++] = 1
    o += this.keys.forward.copy(out, o)
    o += this.keys.backward.copy(out, o)
    this.forward.window.serializeInto(out, o); o += ReplayWindow.SERIALIZED
    out.writeBigUInt64BE(this.backward.counter, o); o += 8
    out.writeUInt32BE(this.nextCircId, o); o += 4
    if (this.nextFingerprint) this.nextFingerprint.copy(out, o)
    else out.fill(0, o)
    return out
  }

  static deserialize (rec: Uint8Array): HopState {
    if (rec.length !== HOP_RECORD_SIZE || rec[0] !== 1) throw lengthError('hop record', String(HOP_RECORD_SIZE), rec.length)
    const b = Buffer.from(rec.buffer, rec.byteOffset, rec.length)
    let o = 1
    const forward = Buffer.from(b.subarray(o, o + 32)); o += 32
    const backward = Buffer.from(b.subarray(o, o + 32)); o += 32
    const window = ReplayWindow.deserialize(b.subarray(o, o + ReplayWindow.SERIALIZED)); o += ReplayWindow.SERIALIZED
    const backCtr = b.readBigUInt64BE(o); o += 8
    const s = new HopState({ forward, backward }, window, backCtr)
    s.nextCircId = b.readUInt32BE(o); o += 4
    const fp = b.subarray(o, o + 32)
    s.nextFingerprint = s.nextCircId ? Buffer.from(fp) : null
    return s
  }

  wipe (): void { this.forward.wipe(); this.backward.wipe() }
}
