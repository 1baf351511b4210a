// The DM envelope codec (docs/PROTOCOL.md, "DM envelope v1"): the binary layout of the
// opaque body the server stores for a direct message, as encode/decode over Buffers.
// Bytes only: no crypto here (dm.ts seals and opens), no base64 (dm.ts adds base64url).
//
//   off   len      field
//   0     1        version = 0x01
//   1     1        F = byte length of `from` (1..255)
//   2     F        from (UTF-8)
//   .     1        T, then T bytes: to (UTF-8)
//   .     1        C, then C bytes: clientId (UTF-8)
//   .     8        sentAt, unsigned 64-bit big-endian, ms since epoch
//                  ── the bytes so far are the "header" (AAD of the content) ──
//   .     32       recipient wrap: ephemeral X25519 public key
//   .     48       recipient wrap: AES-256-GCM(content key) = 32 ciphertext ‖ 16 tag
//   .     32       sender wrap: ephemeral X25519 public key
//   .     48       sender wrap: 32 ciphertext ‖ 16 tag
//   .     4        L = content length, unsigned 32-bit big-endian (16..MAX_TEXT_BYTES+16)
//   .     L        content: AES-256-GCM(text) = ciphertext ‖ 16 tag
//   .     64       Ed25519 signature over SIG_CONTEXT ‖ every preceding byte
//   The total length must equal exactly what the length fields say.

export const DM_VERSION = 1
export const MAX_FIELD_BYTES = 255
export const MAX_TEXT_BYTES = 16 * 1024
export const TAG_BYTES = 16
export const WRAP_BYTES = 32 + 32 + TAG_BYTES
export const SIG_BYTES = 64
export const MAX_ENVELOPE_BYTES = 1 + 3 * (1 + MAX_FIELD_BYTES) + 8 + 2 * WRAP_BYTES + 4 + MAX_TEXT_BYTES + TAG_BYTES + SIG_BYTES

export interface DmHeader {
  from: string
  to: string
  clientId: string
  /** ms since epoch */
  sentAt: number
}

export interface Wrap {
  /** ephemeral X25519 public key, 32 bytes */
  ephemeral: Buffer
  /** the wrapped content key: 32 ciphertext ‖ 16 tag */
  sealed: Buffer
}

export interface DmEnvelope {
  header: DmHeader
  recipientWrap: Wrap
  senderWrap: Wrap
  /** AES-256-GCM ciphertext ‖ tag of the UTF-8 text */
  content: Buffer
  signature: Buffer
}

/** Why a byte string is not an envelope; dm.ts turns any of these into reason 'malformed'. */
export class EnvelopeFormatError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The header bytes: version ‖ from ‖ to ‖ clientId ‖ sentAt. Throws EnvelopeFormatError. */
export function encodeHeader (h: DmHeader): Buffer {
  if (!Number.isSafeInteger(h.sentAt) || h.sentAt < 0) throw new EnvelopeFormatError('sentAt must be a non-negative integer (ms)')
  const fields = [h.from, h.to, h.clientId].map((s, i) => {
    if (typeof s !== 'string') throw new EnvelopeFormatError(`${['from', 'to', 'clientId'][i]} must be a string`)
    const b = Buffer.from(s, 'utf8')
    if (b.length < 1 || b.length > MAX_FIELD_BYTES || b.toString('utf8') !== s) {
      throw new EnvelopeFormatError(`${['from', 'to', 'clientId'][i]} must be 1..${MAX_FIELD_BYTES} bytes of well-formed UTF-8`)
    }
    return Buffer.concat([Buffer.of(b.length), b])
  })
  const time = Buffer.alloc(8)
  time.writeBigUInt64BE(BigInt(h.sentAt))
  return Buffer.concat([Buffer.of(DM_VERSION), ...fields, time])
}

/** Everything the signature covers, i.e. the envelope without its last 64 bytes. */
export function encodeSigned (header: Buffer, recipientWrap: Wrap, senderWrap: Wrap, content: Buffer): Buffer {
  for (const w of [recipientWrap, senderWrap]) {
    if (w.ephemeral.length !== 32 || w.sealed.length !== 32 + TAG_BYTES) throw new EnvelopeFormatError('bad wrap length')
  }
  if (content.length < TAG_BYTES || content.length > MAX_TEXT_BYTES + TAG_BYTES) throw new EnvelopeFormatError('bad content length')
  const len = Buffer.alloc(4)
  len.writeUInt32BE(content.length)
  return Buffer.concat([header, recipientWrap.ephemeral, recipientWrap.sealed, senderWrap.ephemeral, senderWrap.sealed, len, content])
}

/** Splits an envelope into its parts; throws EnvelopeFormatError on any deviation from the layout. */
export function decodeEnvelope (bytes: Buffer): { envelope: DmEnvelope, header: Buffer, signed: Buffer } {
  if (bytes.length > MAX_ENVELOPE_BYTES) throw new EnvelopeFormatError('envelope too large')
  let off = 0
  const take = (n: number): Buffer => {
    if (off + n > bytes.length) throw new EnvelopeFormatError('truncated envelope')
    const out = bytes.subarray(off, off + n)
    off += n
    return out
  }
  if (take(1)[0] !== DM_VERSION) throw new EnvelopeFormatError('unsupported envelope version')
  const field = (): string => {
    const n = take(1)[0]
    if (n < 1) throw new EnvelopeFormatError('empty header field')
    try { return utf8.decode(take(n)) } catch { throw new EnvelopeFormatError('header field is not UTF-8') }
  }
  const from = field()
  const to = field()
  const clientId = field()
  const sentAtBig = take(8).readBigUInt64BE()
  if (sentAtBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new EnvelopeFormatError('sentAt out of range')
  const headerEnd = off
  const recipientWrap = { ephemeral: take(32), sealed: take(32 + TAG_BYTES) }
  const senderWrap = { ephemeral: take(32), sealed: take(32 + TAG_BYTES) }
  const contentLength = take(4).readUInt32BE()
  if (contentLength < TAG_BYTES || contentLength > MAX_TEXT_BYTES + TAG_BYTES) throw new EnvelopeFormatError('bad content length')
  const content = take(contentLength)
  const signedEnd = off
  const signature = take(SIG_BYTES)
  if (off !== bytes.length) throw new EnvelopeFormatError('trailing bytes after signature')
  return {
    envelope: { header: { from, to, clientId, sentAt: Number(sentAtBig) }, recipientWrap, senderWrap, content, signature },
    header: bytes.subarray(0, headerEnd),
    signed: bytes.subarray(0, signedEnd)
  }
}
