// A sliding replay window over 64-bit cell counters (as IPsec/WireGuard do):
// accepts each counter once, in any order within WINDOW of the highest seen,
// and rejects replays and stale counters (P6). check() never changes state;
// commit() is called only after the cell authenticated.
import { lengthError } from '../../errors.js'

export const WINDOW = 1024

export class ReplayWindow {
  /** highest counter committed (0: none yet; counters start at 1) */
  top = 0n
  /** bit i set: counter (top - i) was seen */
  private bits = new Uint32Array(WINDOW / 32)

  check (ctr: bigint): boolean {
    if (ctr === 0n) return false
    if (ctr > this.top) return true
    const age = this.top - ctr
    if (age >= BigInt(WINDOW)) return false
    const i = Number(age)
    return (this.bits[i >>> 5] & (1 << (i & 31))) === 0
  }

  commit (ctr: bigint): void {
    if (ctr > this.top) {
      const shift = ctr - this.top
      if (shift >= BigInt(WINDOW)) this.bits.fill(0)
      else this.shiftBy(Number(shift))
      this.top = ctr
      this.bits[0] |= 1
    } else {
      const i = Number(this.top - ctr)
      this.bits[i >>> 5] |= 1 << (i & 31)
    }
  }

  private shiftBy (n: number): void {
    // move bit i to bit i+n
    const words = this.bits.length
    const wordShift = n >>> 5
    const bitShift = n & 31
    for (let w = words - 1; w >= 0; w--) {
      const src = w - wordShift
      let v = src >= 0 ? (this.bits[src] << bitShift) >>> 0 : 0
      if (bitShift && src - 1 >= 0) v |= this.bits[src - 1] >>> (32 - bitShift)
      this.bits[w] = v
    }
  }

  /** 8 bytes top (u64 BE) + WINDOW/8 bytes of bits (u32 words, little-endian, word 0 first) */
  serialize (): Buffer {
    const out = Buffer.alloc(ReplayWindow.SERIALIZED)
    this.serializeInto(out, 0)
    return out
  }

  /** serialize() written into `out` at `offset` (SERIALIZED bytes) */
  serializeInto (out: Buffer, offset: number): void {
    out.writeBigUInt64BE(this.top, offset)
    for (let w = 0; w < this.bits.length; w++) out.writeUInt32LE(this.bits[w], offset + 8 + 4 * w)
  }

  /** Throws MM_ERR_LENGTH unless `b` is exactly SERIALIZED bytes. */
  static deserialize (b: Uint8Array): ReplayWindow {
    if (b.length !== ReplayWindow.SERIALIZED) throw lengthError('replay window', String(ReplayWindow.SERIALIZED), b.length)
    const w = new ReplayWindow()
    const buf = Buffer.from(b.buffer, b.byteOffset, b.length)
    w.top = buf.readBigUInt64BE(0)
    for (let i = 0; i < w.bits.length; i++) w.bits[i] = buf.readUInt32LE(8 + 4 * i)
    return w
  }

  static readonly SERIALIZED = 8 + WINDOW / 8
}
