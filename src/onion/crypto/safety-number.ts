// Safety numbers: Signal's numeric fingerprint (libsignal NumericFingerprintGenerator, as
// Signal's "safety number" of a pair): for each party, SHA-512 over version (u16 BE, 0) ‖
// public key ‖ stable identifier, then 5200 more rounds of SHA-512(hash ‖ public key); the
// first 30 bytes give six 5-byte chunks, each a big-endian 40-bit integer mod 100000 shown
// as 5 digits. The two 30-digit halves are joined, the smaller first, into 60 digits both
// sides see alike. Here the public key is EncodeEC(IK) ‖ the Ed25519 identity key (pqxdh.ts)
// and the identifier the username. The QR-ready string carries both 32-byte hashes; it is
// our own text form, not Signal's protobuf. Leaves out showing and storing verification.
import { createHash } from 'node:crypto'
import { equalBytes } from './primitives.js'
import { encodeEC, type IdentityPublic } from './pqxdh.js'

export const FINGERPRINT_ITERATIONS = 5200
const FINGERPRINT_VERSION = Buffer.of(0, 0)
const QR_PREFIX = 'marshmello-safety:0:'

/** the iterated hash of one party (64 bytes) */
export function fingerprintHash (identity: IdentityPublic, username: string, iterations = FINGERPRINT_ITERATIONS): Buffer {
  const key = Buffer.concat([encodeEC(identity.dh), identity.sig])
  let hash = createHash('sha512').update(FINGERPRINT_VERSION).update(key).update(username, 'utf8').digest()
  for (let i = 0; i < iterations; i++) hash = createHash('sha512').update(hash).update(key).digest()
  return hash
}

/** 30 digits: six chunks of 5 bytes, each mod 100000 */
export function displayHalf (hash: Uint8Array): string {
  let out = ''
  for (let off = 0; off < 30; off += 5) {
    const chunk = Buffer.from(hash.subarray(off, off + 5)).readUIntBE(0, 5)
    out += String(chunk % 100000).padStart(5, '0')
  }
  return out
}

export interface SafetyNumber {
  /** 60 digits */
  digits: string
  /** the digits in twelve groups of five, for people to read aloud */
  grouped: string
  /** text for a QR code: our hash, then theirs (base64url) */
  qr: string
}

export function safetyNumber (mine: { identity: IdentityPublic, username: string }, theirs: { identity: IdentityPublic, username: string }): SafetyNumber {
  const a = fingerprintHash(mine.identity, mine.username)
  const b = fingerprintHash(theirs.identity, theirs.username)
  const da = displayHalf(a)
  const db = displayHalf(b)
  const digits = da < db ? da + db : db + da
  return {
    digits,
    grouped: digits.match(/.{5}/g)!.join(' '),
    qr: QR_PREFIX + a.subarray(0, 32).toString('base64url') + ':' + b.subarray(0, 32).toString('base64url')
  }
}

/** true when `scanned` is the other side's QR string of the same pair (their mine = our theirs) */
export function safetyQrMatches (ours: string, scanned: string): boolean {
  const parse = (s: string) => {
    if (typeof s !== 'string' || !s.startsWith(QR_PREFIX)) return null
    const parts = s.slice(QR_PREFIX.length).split(':')
    if (parts.length !== 2) return null
    const [x, y] = parts.map((p) => Buffer.from(p, 'base64url'))
    return x.length === 32 && y.length === 32 ? [x, y] : null
  }
  const o = parse(ours)
  const t = parse(scanned)
  return o !== null && t !== null && equalBytes(o[0], t[1]) && equalBytes(o[1], t[0])
}
