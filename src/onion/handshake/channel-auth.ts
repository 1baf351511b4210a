// The AUTH channel cell (docs/PROTOCOL.md §2.3): a relay that opened a channel proves to
// the hop that accepted it which listed relay it is, by signing with its RSA identity
// key a transcript bound to THIS TLS connection (an RFC 5705/8446 exporter value that
// both ends compute) and THIS responder (its fingerprint). Pure: the caller supplies
// the exporter value and the lookup of listed identity keys; no sockets here. Clients
// never send AUTH (they stay indistinguishable from each other).
//
//   0             32          34              34+n                     2043
//   +-------------+-----------+---------------+------------------------+
//   | fingerprint | sigLen    | signature     | random padding         |
//   +-------------+-----------+---------------+------------------------+
//   fingerprint: the initiator's (SHA-256 of its identity key's SPKI DER)
//   sigLen: u16, 1..MAX_AUTH_SIGNATURE
//   signature: RSA-PSS-SHA256 (salt 32) by the identity key over authTranscript(...)
import { MarshmelloError, lengthError } from '../../errors.js'
import { assertBytes, equalBytes, rsaFingerprint, rsaSign, rsaVerify } from '../crypto/primitives.js'

/** label of the TLS exporter both ends of a channel derive the binding value with */
export const AUTH_EXPORTER_LABEL = 'EXPORTER-marshmello-relay-auth'
/** bytes taken from the TLS exporter */
export const AUTH_EXPORTER_LENGTH = 32
/** first bytes of every signed transcript; binary, so it never parses as a descriptor's canonical JSON */
export const AUTH_LABEL = Buffer.from('marshmello/v1 link auth\0', 'latin1')
/** an RSA-8192 signature; identity keys are 2048 bits as generated */
export const MAX_AUTH_SIGNATURE = 1024
/** fingerprint + sigLen */
export const AUTH_HEADER = 34

/**
 * The bytes signed: AUTH_LABEL ‖ initiator fingerprint (32) ‖ responder fingerprint (32)
 * ‖ exporter value (32). Replayed on another connection the exporter differs; sent to
 * another hop the responder fingerprint differs.
 */
export function authTranscript (initiator: Uint8Array, responder: Uint8Array, exporter: Uint8Array): Buffer {
  assertBytes('initiator fingerprint', initiator, 32)
  assertBytes('responder fingerprint', responder, 32)
  assertBytes('TLS exporter value', exporter, AUTH_EXPORTER_LENGTH)
  return Buffer.concat([AUTH_LABEL, initiator, responder, exporter])
}

export interface AuthInit {
  /** the initiator's RSA identity key, PKCS#8 DER */
  identityPrivate: Uint8Array
  /** the initiator's fingerprint */
  fingerprint: Uint8Array
  /** the listed fingerprint of the hop the channel was opened to */
  responderFingerprint: Uint8Array
  /** this connection's TLS exporter value (AUTH_EXPORTER_LABEL, AUTH_EXPORTER_LENGTH bytes) */
  exporter: Uint8Array
}

/** The AUTH cell data (unpadded: encodeChannelCell pads it with random bytes). */
export function encodeAuth (a: AuthInit): Buffer {
  const sig = rsaSign(a.identityPrivate, authTranscript(a.fingerprint, a.responderFingerprint, a.exporter))
  if (sig.length > MAX_AUTH_SIGNATURE) throw lengthError('AUTH signature', `at most ${MAX_AUTH_SIGNATURE}`, sig.length)
  const out = Buffer.allocUnsafe(AUTH_HEADER + sig.length)
  out.set(a.fingerprint, 0)
  out.writeUInt16BE(sig.length, 32)
  out.set(sig, AUTH_HEADER)
  return out
}

export interface AuthBody {
  fingerprint: Buffer
  signature: Buffer
}

/** Parses AUTH cell data (padding after the signature ignored). Throws MM_ERR_LENGTH. */
export function decodeAuth (data: Uint8Array): AuthBody {
  if (data.length < AUTH_HEADER) throw lengthError('AUTH', `at least ${AUTH_HEADER}`, data.length)
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length)
  const n = buf.readUInt16BE(32)
  if (n < 1 || n > MAX_AUTH_SIGNATURE) throw lengthError('AUTH signature', `1..${MAX_AUTH_SIGNATURE}`, n)
  if (AUTH_HEADER + n > buf.length) throw lengthError('AUTH', `at least ${AUTH_HEADER + n}`, buf.length)
  return { fingerprint: buf.subarray(0, 32), signature: buf.subarray(AUTH_HEADER, AUTH_HEADER + n) }
}

export interface VerifyAuthInit {
  /** the AUTH cell's data */
  data: Uint8Array
  /** the verifying hop's own fingerprint */
  responderFingerprint: Uint8Array
  /** the verifying side's TLS exporter value for this connection */
  exporter: Uint8Array
  /** SPKI DER of the identity key of the listed relay with this (hex) fingerprint, or undefined */
  identityKey: (fingerprintHex: string) => Uint8Array | undefined
}

/**
 * Checks an AUTH and returns the proven fingerprint (hex). Throws MM_ERR_LENGTH (truncated
 * or out-of-range lengths), MM_ERR_AUTH_UNLISTED (no listed relay has this fingerprint) or
 * MM_ERR_AUTH_SIGNATURE (the signature does not verify with that relay's listed key over
 * this connection's transcript: another connection, another responder, another key, tampered).
 */
export function verifyAuth (v: VerifyAuthInit): string {
  const { fingerprint, signature } = decodeAuth(v.data)
  const transcript = authTranscript(fingerprint, v.responderFingerprint, v.exporter)
  const hex = fingerprint.toString('hex')
  const key = v.identityKey(hex)
  if (!key) throw new MarshmelloError('MM_ERR_AUTH_UNLISTED', `AUTH names ${hex.slice(0, 16)}…, which is not a relay listed in the consensus`)
  // the lookup is keyed by fingerprint; the key must really be the one it names
  if (!equalBytes(rsaFingerprint(key), fingerprint) || !rsaVerify(key, transcript, signature)) {
    throw new MarshmelloError('MM_ERR_AUTH_SIGNATURE', 'AUTH signature does not verify for this connection and this hop')
  }
  return hex
}
