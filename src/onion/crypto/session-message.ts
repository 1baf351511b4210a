// The inner bytes of a direct message (docs/PROTOCOL.md §11): what a session produces and
// consumes, opaque to the server and to the sealed envelope that carries it. Two kinds:
//
//   PREKEY (the first messages of a session, until the initiator hears back; PQXDH §3.3):
//     off  len   field
//     0    1     type = 0x02
//     1    32    IKA, X25519 identity key
//     33   32    IKA's Ed25519 identity signing key
//     65   32    EKA, ephemeral X25519 key
//     97   4     signed prekey id (u32 BE)
//     101  4     ML-KEM prekey id (u32 BE)
//     105  1     flags: bit 0 = the ML-KEM prekey is the last-resort one, bit 1 = a one-time prekey was used
//     106  4     one-time prekey id (u32 BE; 0 without bit 1)
//     110  1088  CT, the ML-KEM-768 ciphertext
//     1198 ...   a ratchet message
//   MESSAGE: type = 0x03, then a ratchet message.
//   A ratchet message (Double Ratchet §4): enc_header (12 nonce ‖ 40 header ‖ 16 tag) ‖ AES-256-GCM body.
//
// Type 0x01 is the retired DM envelope v1 (client e2e/envelope.ts), so old bodies are recognised.
import { MLKEM_CIPHERTEXT_BYTES } from './mlkem.js'
import type { InitialHeader } from './pqxdh.js'
import { ENC_HEADER_BYTES } from './ratchet.js'

export const INNER_PREKEY = 0x02
export const INNER_MESSAGE = 0x03
export const INNER_LEGACY_V1 = 0x01
const PREKEY_HEADER_BYTES = 1 + 32 + 32 + 32 + 4 + 4 + 1 + 4 + MLKEM_CIPHERTEXT_BYTES
const MIN_RATCHET = ENC_HEADER_BYTES + 16

export type InnerMessage =
  | { kind: 'prekey', header: InitialHeader, message: Buffer }
  | { kind: 'message', message: Buffer }
  | { kind: 'legacy' }

export function encodePrekeyMessage (h: InitialHeader, message: Uint8Array): Buffer {
  const out = Buffer.alloc(PREKEY_HEADER_BYTES)
  let off = 0
  out[off++] = INNER_PREKEY
  for (const part of [h.identity.dh, h.identity.sig, h.ephemeral]) { Buffer.from(part).copy(out, off); off += 32 }
  out.writeUInt32BE(h.signedPrekeyId, off); off += 4
  out.writeUInt32BE(h.kemPrekeyId, off); off += 4
  out[off++] = (h.lastResort ? 1 : 0) | (h.oneTimePrekeyId !== undefined ? 2 : 0)
  out.writeUInt32BE(h.oneTimePrekeyId ?? 0, off); off += 4
  Buffer.from(h.kemCiphertext).copy(out, off)
  return Buffer.concat([out, message])
}

export const encodeRatchetMessage = (message: Uint8Array): Buffer => Buffer.concat([Buffer.of(INNER_MESSAGE), message])

/** undefined for anything that is not one of the layouts above */
export function decodeInner (bytes: Uint8Array): InnerMessage | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.length < 1) return undefined
  const b = Buffer.from(bytes)
  if (b[0] === INNER_LEGACY_V1) return { kind: 'legacy' }
  if (b[0] === INNER_MESSAGE) return b.length >= 1 + MIN_RATCHET ? { kind: 'message', message: b.subarray(1) } : undefined
  if (b[0] !== INNER_PREKEY || b.length < PREKEY_HEADER_BYTES + MIN_RATCHET) return undefined
  const flags = b[105]
  if (flags > 3) return undefined
  const header: InitialHeader = {
    identity: { dh: b.subarray(1, 33), sig: b.subarray(33, 65) },
    ephemeral: b.subarray(65, 97),
    signedPrekeyId: b.readUInt32BE(97),
    kemPrekeyId: b.readUInt32BE(101),
    lastResort: (flags & 1) === 1,
    oneTimePrekeyId: (flags & 2) === 2 ? b.readUInt32BE(106) : undefined,
    kemCiphertext: b.subarray(110, 110 + MLKEM_CIPHERTEXT_BYTES)
  }
  if ((flags & 2) === 0 && b.readUInt32BE(106) !== 0) return undefined
  return { kind: 'prekey', header, message: b.subarray(PREKEY_HEADER_BYTES) }
}
