// The plaintext a DM session encrypts (docs/PROTOCOL.md §11.3): the sender's clock and the
// text live only here, inside the ciphertext, padded with zeros to one of a few sizes so
// the ciphertext's length says little about the text's. Bytes only: sessions.ts encrypts.
//
//   off  len  field
//   0    1    version = 0x01
//   1    8    sentAt, u64 BE, ms since epoch (the sender's clock)
//   9    4    T = text length, u32 BE (≤ MAX_TEXT_BYTES)
//   13   T    text, UTF-8
//   .    …    zero padding up to the smallest of PAD_SIZES that fits
import { MAX_TEXT_BYTES } from './envelope.js'

export const CONTENT_VERSION = 1
const HEAD = 13
/** every DM plaintext is one of these lengths */
export const PAD_SIZES = [256, 1024, 4096, HEAD + MAX_TEXT_BYTES] as const

export interface DmContent { sentAt: number, text: string }

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Throws Error when the text is too long or not well-formed (the caller checks first). */
export function encodeContent (c: DmContent): Buffer {
  const text = Buffer.from(c.text, 'utf8')
  if (text.toString('utf8') !== c.text) throw new Error('text must be well-formed Unicode')
  if (text.length > MAX_TEXT_BYTES) throw new Error(`text must be at most ${MAX_TEXT_BYTES} bytes`)
  if (!Number.isSafeInteger(c.sentAt) || c.sentAt < 0) throw new Error('sentAt must be a non-negative integer')
  const size = PAD_SIZES.find(s => s >= HEAD + text.length)!
  const out = Buffer.alloc(size)
  out[0] = CONTENT_VERSION
  out.writeBigUInt64BE(BigInt(c.sentAt), 1)
  out.writeUInt32BE(text.length, 9)
  text.copy(out, HEAD)
  text.fill(0)
  return out
}

/** undefined for anything that is not a content of this layout (padding must be zeros) */
export function decodeContent (b: Uint8Array): DmContent | undefined {
  const buf = Buffer.from(b)
  if (buf.length < HEAD || buf[0] !== CONTENT_VERSION) return undefined
  const sentAt = buf.readBigUInt64BE(1)
  const len = buf.readUInt32BE(9)
  if (sentAt > BigInt(Number.MAX_SAFE_INTEGER) || len > MAX_TEXT_BYTES || HEAD + len > buf.length) return undefined
  if (!buf.subarray(HEAD + len).every(x => x === 0)) return undefined
  try {
    return { sentAt: Number(sentAt), text: utf8.decode(buf.subarray(HEAD, HEAD + len)) }
  } catch {
    return undefined
  }
}
