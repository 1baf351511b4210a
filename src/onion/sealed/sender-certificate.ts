// Sender and server certificates for sealed sender (docs/PROTOCOL.md §12.2), in the
// shape of Signal's sealed sender (libsignal `ServerCertificate` / `SenderCertificate`):
// the pinned directory key (the trust root, the key whose fingerprint clients already
// pin for the consensus, §7.2) signs a short list of server certificate keys; a server
// certificate key signs each sender certificate (username, identity key, expiry ≤ 24 h).
// A recipient checks the whole chain offline. Bytes in, bytes out; no I/O.
//
// ServerCertificate (every integer big-endian):
//   0   1   version = 0x01
//   1   4   key id
//   5   32  server certificate key (Ed25519, raw)
//   37  8   expires (ms since epoch)
//   45  32  trust root: the directory key (Ed25519, raw) that signs below
//   77  64  Ed25519 signature by the trust root over SERVER_CERT_CONTEXT ‖ bytes 0..76
// SenderCertificate:
//   0   1   version = 0x01
//   1   1   U = byte length of the username (3..32), then U bytes of it
//   .   32  the sender's identity key (X25519, raw): the key the sealed envelope's static layer proves
//   .   8   expires (ms since epoch)
//   .   141 the ServerCertificate above
//   .   64  Ed25519 signature by the server certificate key over SENDER_CERT_CONTEXT ‖ every preceding byte

import { MarshmelloError } from '../../errors.js'
import { isUsername } from '../../names.js'
import { ed25519Fingerprint, ed25519PublicFromPrivate, ed25519Sign, ed25519Verify } from '../crypto/primitives.js'

export const CERT_VERSION = 1
export const SERVER_CERT_BYTES = 1 + 4 + 32 + 8 + 32 + 64
/** Signal's sender certificates last a day; ours never longer (issue 16). */
export const MAX_SENDER_CERT_MS = 24 * 3600_000
export const SERVER_CERT_CONTEXT = Buffer.from('marshmello/sealed/server-cert/v1', 'utf8')
export const SENDER_CERT_CONTEXT = Buffer.from('marshmello/sealed/sender-cert/v1', 'utf8')
export const MAX_SENDER_CERT_BYTES = 1 + 1 + 32 + 32 + 8 + SERVER_CERT_BYTES + 64

export interface ServerCertificate {
  keyId: number
  key: Buffer
  expires: number
  trustRoot: Buffer
  signature: Buffer
  bytes: Buffer
}

export interface SenderCertificate {
  username: string
  identityKey: Buffer
  expires: number
  server: ServerCertificate
  bytes: Buffer
}

export type CertFailure = 'malformed' | 'untrusted-root' | 'bad-server-signature' | 'server-expired' | 'bad-signature' | 'expired' | 'too-long' | 'identity-mismatch'

/** Thrown when a certificate fails a check; `reason` says which (tests assert it). */
export class CertificateError extends MarshmelloError {
  constructor (readonly reason: CertFailure, message: string) {
    super('MM_ERR_SENDER_CERT', message)
  }
}

const u64 = (n: number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b }
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }

/** The trust root (directory key) signs a server certificate key. */
export function issueServerCertificate (init: { keyId: number, key: Uint8Array, expires: number, rootPrivate: Uint8Array }): Buffer {
  if (!Number.isInteger(init.keyId) || init.keyId < 0 || init.keyId > 0xffffffff) throw new MarshmelloError('MM_ERR_CONFIG', 'server certificate key id must be a 32-bit unsigned integer')
  if (init.key.length !== 32) throw new MarshmelloError('MM_ERR_CONFIG', 'server certificate key must be 32 bytes')
  const root = ed25519PublicFromPrivate(init.rootPrivate)
  const body = Buffer.concat([Buffer.of(CERT_VERSION), u32(init.keyId), Buffer.from(init.key), u64(init.expires), root])
  return Buffer.concat([body, ed25519Sign(init.rootPrivate, Buffer.concat([SERVER_CERT_CONTEXT, body]))])
}

/** A server certificate key signs a sender certificate; `expires - now` must be at most 24 h. */
export function issueSenderCertificate (init: { username: string, identityKey: Uint8Array, expires: number, now: number, serverCertificate: Uint8Array, serverPrivate: Uint8Array }): Buffer {
  if (!isUsername(init.username)) throw new MarshmelloError('MM_ERR_VALIDATION', 'a sender certificate names a lowercase username')
  if (init.identityKey.length !== 32) throw new MarshmelloError('MM_ERR_BAD_KEY', 'identity key must be 32 raw bytes')
  if (init.expires - init.now > MAX_SENDER_CERT_MS || init.expires <= init.now) throw new MarshmelloError('MM_ERR_CONFIG', 'a sender certificate lives more than 0 and at most 24 h')
  if (init.serverCertificate.length !== SERVER_CERT_BYTES) throw new MarshmelloError('MM_ERR_CONFIG', 'bad server certificate')
  const name = Buffer.from(init.username, 'utf8')
  const body = Buffer.concat([Buffer.of(CERT_VERSION, name.length), name, Buffer.from(init.identityKey), u64(init.expires), Buffer.from(init.serverCertificate)])
  return Buffer.concat([body, ed25519Sign(init.serverPrivate, Buffer.concat([SENDER_CERT_CONTEXT, body]))])
}

function parseServer (b: Buffer): ServerCertificate {
  if (b.length !== SERVER_CERT_BYTES || b[0] !== CERT_VERSION) throw new CertificateError('malformed', 'malformed server certificate')
  return { keyId: b.readUInt32BE(1), key: b.subarray(5, 37), expires: Number(b.readBigUInt64BE(37)), trustRoot: b.subarray(45, 77), signature: b.subarray(77), bytes: b }
}

/** Splits a sender certificate into its fields; checks nothing but the layout. Throws CertificateError('malformed'). */
export function parseSenderCertificate (bytes: Uint8Array): SenderCertificate {
  const b = Buffer.from(bytes)
  if (b.length < 2 || b.length > MAX_SENDER_CERT_BYTES || b[0] !== CERT_VERSION) throw new CertificateError('malformed', 'malformed sender certificate')
  const n = b[1]
  if (b.length !== 2 + n + 32 + 8 + SERVER_CERT_BYTES + 64) throw new CertificateError('malformed', 'malformed sender certificate')
  const username = b.subarray(2, 2 + n).toString('utf8')
  if (!isUsername(username)) throw new CertificateError('malformed', 'sender certificate names no valid username')
  let off = 2 + n
  const identityKey = b.subarray(off, off + 32); off += 32
  const expiresBig = b.readBigUInt64BE(off); off += 8
  if (expiresBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new CertificateError('malformed', 'sender certificate expiry out of range')
  const server = parseServer(b.subarray(off, off + SERVER_CERT_BYTES))
  return { username, identityKey, expires: Number(expiresBig), server, bytes: b }
}

/**
 * Checks a sender certificate offline, as a recipient does (Signal's
 * `SenderCertificate::validate`): the server certificate is signed by the pinned trust
 * root (the directory key whose fingerprint, hex, the client pins) and not expired; the
 * sender certificate is signed by that server key, not expired, and lives at most 24 h
 * from now. Throws CertificateError with the failed check.
 */
export function verifySenderCertificate (bytes: Uint8Array, pinnedRootFingerprint: string, now: number): SenderCertificate {
  const c = parseSenderCertificate(bytes)
  const s = c.server
  if (ed25519Fingerprint(s.trustRoot).toString('hex') !== pinnedRootFingerprint.toLowerCase()) throw new CertificateError('untrusted-root', 'the server certificate is signed by a key other than the pinned directory key')
  if (!ed25519Verify(s.trustRoot, Buffer.concat([SERVER_CERT_CONTEXT, s.bytes.subarray(0, SERVER_CERT_BYTES - 64)]), s.signature)) throw new CertificateError('bad-server-signature', 'the server certificate signature does not verify')
  if (s.expires <= now) throw new CertificateError('server-expired', 'the server certificate has expired')
  const body = c.bytes.subarray(0, c.bytes.length - 64)
  if (!ed25519Verify(s.key, Buffer.concat([SENDER_CERT_CONTEXT, body]), c.bytes.subarray(c.bytes.length - 64))) throw new CertificateError('bad-signature', 'the sender certificate signature does not verify')
  if (c.expires <= now) throw new CertificateError('expired', 'the sender certificate has expired')
  if (c.expires - now > MAX_SENDER_CERT_MS + 60_000) throw new CertificateError('too-long', 'the sender certificate claims to live longer than 24 h')
  return c
}
