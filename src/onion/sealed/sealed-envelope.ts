// The sealed envelope (docs/PROTOCOL.md §12.1): what carries a DM to the server without
// saying who sent it. It follows Signal's sealed sender v1 (libsignal
// `sealed_sender_encrypt`, "UnidentifiedDelivery"): an ephemeral X25519 key agreed with
// the recipient's identity key hides the sender's identity key (the first layer); an
// agreement of the sender's identity key with the recipient's encrypts the content (the
// second layer), so opening it proves the sender holds that identity key. The content is
// the sender certificate ‖ the sender's access key ‖ the opaque inner DM bytes, padded
// (padding.ts) before encryption. AES-256-GCM stands in for Signal's AES-CTR + HMAC.
// Checking the certificate is the caller's (sender-certificate.ts); bytes only, no I/O.
//
//   0   1   version = 0x01
//   1   32  E: ephemeral X25519 public key
//   33  48  first layer: AES-256-GCM(k_e, zero nonce, sender identity public key), AAD = bytes 0..32
//   81  L   second layer: AES-256-GCM(k_s, zero nonce, padded content), AAD = bytes 0..80
//   (k_e, chain) = HKDF-SHA256(ikm = X25519(e, R), salt = EPH_SALT ‖ R ‖ E, info = "ephemeral", 64)
//   k_s          = HKDF-SHA256(ikm = X25519(s, R), salt = chain ‖ first layer, info = "static", 32)
// content = u16 C ‖ C bytes sender certificate ‖ u8 A (0 or 16) ‖ A bytes access key ‖ inner bytes

import { MarshmelloError } from '../../errors.js'
import { GCM_TAG, aesGcmOpen, aesGcmSeal, hkdfSha256, x25519, x25519Ephemeral, x25519PublicFromPrivate } from '../crypto/primitives.js'
import { ACCESS_KEY_BYTES } from './delivery-token.js'
import { PAD_BUCKETS, pad, unpad } from './padding.js'

export const SEALED_VERSION = 1
const EPH_SALT = Buffer.from('marshmello/sealed/v1', 'utf8')
const ZERO_NONCE = Buffer.alloc(12)
const HEAD = 1 + 32 + 32 + GCM_TAG
/** an envelope's length is this plus one of the padding buckets */
export const SEALED_OVERHEAD = HEAD + GCM_TAG
export const MAX_SEALED_BYTES = SEALED_OVERHEAD + PAD_BUCKETS.at(-1)!

export interface SealInit {
  /** the recipient's identity key (X25519 public, raw) */
  recipientIdentity: Uint8Array
  /** the sender's identity key pair (X25519 private, raw); its public half must be the certificate's */
  senderIdentityPrivate: Uint8Array
  senderCertificate: Uint8Array
  /** the sender's access key, so the recipient can answer with a delivery token; omitted when not shared */
  accessKey?: Uint8Array
  /** the opaque inner DM (the session layer's ciphertext) */
  inner: Uint8Array
  /** fixed ephemeral private key, for vectors only */
  ephemeralPrivate?: Uint8Array
}

export interface Unsealed {
  /** the sender identity key the static layer proved */
  senderIdentity: Buffer
  senderCertificate: Buffer
  accessKey?: Buffer
  inner: Buffer
}

/** Thrown when an envelope does not open (wrong recipient, altered, malformed); never says which. */
const unopenable = () => new MarshmelloError('MM_ERR_SEALED', 'sealed envelope does not open')

function ephemeralKeys (shared: Buffer, recipient: Uint8Array, eph: Uint8Array): { kE: Buffer, chain: Buffer } {
  const okm = hkdfSha256(shared, Buffer.concat([EPH_SALT, recipient, eph]), Buffer.from('ephemeral'), 64)
  shared.fill(0)
  return { chain: okm.subarray(0, 32), kE: okm.subarray(32) }
}

const staticKey = (shared: Buffer, chain: Buffer, firstLayer: Buffer): Buffer => {
  const k = hkdfSha256(shared, Buffer.concat([chain, firstLayer]), Buffer.from('static'), 32)
  shared.fill(0)
  return k
}

export function sealEnvelope (init: SealInit): Buffer {
  if (init.senderCertificate.length > 0xffff) throw new MarshmelloError('MM_ERR_BAD_DM', 'sender certificate too long')
  if (init.accessKey !== undefined && init.accessKey.length !== ACCESS_KEY_BYTES) throw new MarshmelloError('MM_ERR_BAD_KEY', `access key must be ${ACCESS_KEY_BYTES} bytes`)
  const certLen = Buffer.alloc(2)
  certLen.writeUInt16BE(init.senderCertificate.length)
  const ak = init.accessKey ?? Buffer.alloc(0)
  const content = pad(Buffer.concat([certLen, init.senderCertificate, Buffer.of(ak.length), ak, init.inner]))
  const eph = x25519Ephemeral(init.ephemeralPrivate)
  try {
    const head = Buffer.concat([Buffer.of(SEALED_VERSION), eph.publicKey])
    const { kE, chain } = ephemeralKeys(eph.agree(init.recipientIdentity), init.recipientIdentity, eph.publicKey)
    const senderPublic = x25519PublicFromPrivate(init.senderIdentityPrivate)
    const first = aesGcmSeal(kE, ZERO_NONCE, senderPublic, head)
    kE.fill(0)
    const kS = staticKey(x25519(init.senderIdentityPrivate, init.recipientIdentity), chain, first)
    chain.fill(0)
    const second = aesGcmSeal(kS, ZERO_NONCE, content, Buffer.concat([head, first]))
    kS.fill(0)
    return Buffer.concat([head, first, second])
  } finally {
    eph.dispose()
    content.fill(0)
  }
}

/** Opens an envelope with the recipient's identity private key. Throws MM_ERR_SEALED on anything wrong. */
export function openEnvelope (bytes: Uint8Array, recipientIdentityPrivate: Uint8Array): Unsealed {
  const b = Buffer.from(bytes)
  if (b.length < HEAD + GCM_TAG || b.length > MAX_SEALED_BYTES || b[0] !== SEALED_VERSION) throw unopenable()
  const head = b.subarray(0, 33)
  const first = b.subarray(33, HEAD)
  const recipient = x25519PublicFromPrivate(recipientIdentityPrivate)
  let shared: Buffer
  try { shared = x25519(recipientIdentityPrivate, head.subarray(1)) } catch { throw unopenable() }
  const { kE, chain } = ephemeralKeys(shared, recipient, head.subarray(1))
  const senderIdentity = aesGcmOpen(kE, ZERO_NONCE, first, head)
  kE.fill(0)
  if (senderIdentity === null || senderIdentity.length !== 32) throw unopenable()
  let shared2: Buffer
  try { shared2 = x25519(recipientIdentityPrivate, senderIdentity) } catch { throw unopenable() }
  const kS = staticKey(shared2, chain, first)
  const padded = aesGcmOpen(kS, ZERO_NONCE, b.subarray(HEAD), b.subarray(0, HEAD))
  kS.fill(0)
  if (padded === null) throw unopenable()
  const content = unpad(padded)
  padded.fill(0)
  if (content === undefined || content.length < 3) throw unopenable()
  const c = content.readUInt16BE(0)
  if (content.length < 2 + c + 1) throw unopenable()
  const senderCertificate = content.subarray(2, 2 + c)
  const a = content[2 + c]
  if (a !== 0 && a !== ACCESS_KEY_BYTES) throw unopenable()
  if (content.length < 3 + c + a) throw unopenable()
  const accessKey = a === 0 ? undefined : content.subarray(3 + c, 3 + c + a)
  return { senderIdentity, senderCertificate, accessKey, inner: content.subarray(3 + c + a) }
}
