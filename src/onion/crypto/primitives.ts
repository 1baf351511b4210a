// Every cryptographic primitive the protocol uses, over node:crypto (OpenSSL):
// SHA-256, HMAC, HKDF, AES-256-GCM, X25519, RSA-OAEP, Ed25519 and randomness.
// Keeping them here means a change of library touches one file. Keys cross this
// boundary as raw bytes (X25519/Ed25519: 32 bytes) or DER (RSA: SPKI / PKCS#8).
import {
  createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey,
  diffieHellman, generateKeyPairSync, hkdfSync, privateDecrypt, publicEncrypt, randomBytes as nodeRandomBytes,
  sign as nodeSign, verify as nodeVerify, timingSafeEqual, constants, type KeyObject,
} from 'node:crypto'
import { MarshmelloError, lengthError } from '../../errors.js'
import { PKCS8_PREFIX, SPKI_PREFIX, type RawKeyPair } from './okp.js'

export type { RawKeyPair } from './okp.js'

export { randomBytes } from './random.js'

export const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

export const hmacSha256 = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => {
  const h = createHmac('sha256', key)
  for (const p of parts) h.update(p)
  return h.digest()
}

export const hkdfSha256 = (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer =>
  Buffer.from(hkdfSync('sha256', ikm, salt, info, length))

/** constant-time equality; false (not an exception) for different lengths */
export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

export function assertBytes (what: string, b: Uint8Array, len: number): void {
  if (!(b instanceof Uint8Array)) throw new MarshmelloError('MM_ERR_TYPE', `expected ${what} as bytes`)
  if (b.length !== len) throw lengthError(what, String(len), b.length)
}

/* ---- AES-256-GCM with 96-bit nonces; tag appended ---- */

export const GCM_TAG = 16

export function aesGcmSeal (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + GCM_TAG)
  aesGcmSealInto(key, nonce, plaintext, aad, out, 0)
  return out
}

/**
 * Seals into `out` at `offset` (ciphertext, then the tag) without intermediate
 * buffers: the cell path seals several layers per cell, and every 2 KiB buffer it
 * allocated showed up as garbage-collector time in profiles.
 */
export function aesGcmSealInto (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined, out: Uint8Array, offset: number): void {
  if (offset + plaintext.length + GCM_TAG > out.length) throw lengthError('sealed output', `at least ${offset + plaintext.length + GCM_TAG}`, out.length)
  const c = createCipheriv('aes-256-gcm', key, nonce)
  if (aad) c.setAAD(aad)
  out.set(c.update(plaintext), offset)
  c.final() // GCM is a stream mode: nothing more is output
  out.set(c.getAuthTag(), offset + plaintext.length)
}

/** returns null when authentication fails (no exception: callers drop the cell) */
export function aesGcmOpen (key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer | null {
  if (sealed.length < GCM_TAG) return null
  const d = createDecipheriv('aes-256-gcm', key, nonce)
  if (aad) d.setAAD(aad)
  d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG))
  const pt = d.update(sealed.subarray(0, sealed.length - GCM_TAG))
  try {
    d.final()
  } catch {
    pt.fill(0)
    return null
  }
  return pt
}

/* ---- X25519 with raw 32-byte keys ---- */

const ED25519_SPKI = SPKI_PREFIX.Ed25519
const ED25519_PKCS8 = PKCS8_PREFIX.Ed25519

// Public X25519 keys cross into KeyObjects as JWK (`x` only), not DER: with OpenSSL 3
// every DER (PKCS#8/SPKI) import looks a decoder up and costs ~0.15-0.65 ms on Node 24,
// JWK ~25 µs. A private key cannot come in as JWK from its 32 bytes alone: RFC 8037 §2
// makes `x` the public key of `d`, and Node 24 refuses a JWK whose `x` does not match
// (Node 20 accepted a placeholder). So a key given as bytes (vectors, stored keys)
// comes in as PKCS#8 DER, and a fresh ephemeral key is generated as a KeyObject.
const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64url')
const fromB64u = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url')
const X25519_PKCS8 = PKCS8_PREFIX.X25519
function x25519Private (priv: Uint8Array): KeyObject {
  const der = Buffer.concat([X25519_PKCS8, priv])
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } finally {
    der.fill(0)
  }
}
const x25519PublicOf = (key: KeyObject): Buffer => fromB64u(createPublicKey(key).export({ format: 'jwk' }).x)

export function x25519PublicFromPrivate (priv: Uint8Array): Buffer {
  assertBytes('X25519 private key', priv, 32)
  return x25519PublicOf(x25519Private(priv))
}

/** X25519(priv, pub). Throws MM_ERR_HANDSHAKE for a low-order peer key (all-zero result). */
export function x25519 (priv: Uint8Array, pub: Uint8Array): Buffer {
  assertBytes('X25519 private key', priv, 32)
  return agree(x25519Private(priv), pub)
}

/**
 * A single-use X25519 key, ready: generating it (and its public half) is done up front,
 * so a handshake prepared ahead of time pays only the agreement when the peer's key
 * arrives. The private key lives only inside the KeyObject; dispose() drops it, after
 * which agree() refuses (one agreement per key, P5).
 */
export interface X25519Ephemeral {
  readonly publicKey: Buffer
  /** X25519(this, pub). Throws MM_ERR_HANDSHAKE for a low-order peer key. */
  agree (pub: Uint8Array): Buffer
  /** forgets the private key; agree() throws MM_ERR_HANDSHAKE afterwards */
  dispose (): void
  readonly disposed: boolean
}

/**
 * A fresh ephemeral key, or (for vectors and tests with fixed randomness) the one whose
 * private key is `priv`. `priv` is copied into the key object; the caller erases its own.
 */
export function x25519Ephemeral (priv?: Uint8Array): X25519Ephemeral {
  let key: KeyObject | null
  let publicKey: Buffer
  if (priv === undefined) {
    const pair = generateKeyPairSync('x25519')
    key = pair.privateKey
    publicKey = fromB64u(pair.publicKey.export({ format: 'jwk' }).x)
  } else {
    assertBytes('X25519 private key', priv, 32)
    key = x25519Private(priv)
    publicKey = x25519PublicOf(key)
  }
  return {
    publicKey,
    agree (pub) {
      if (key === null) throw new MarshmelloError('MM_ERR_HANDSHAKE', 'X25519 ephemeral key already used')
      return agree(key, pub)
    },
    dispose () { key = null },
    get disposed () { return key === null },
  }
}

/**
 * x25519PublicFromPrivate(priv) and x25519(priv, pub) from one key object (a hop's
 * CREATE answer needs both; building the key twice was a tenth of it).
 */
export function x25519PublicAndShared (priv: Uint8Array, pub: Uint8Array): { publicKey: Buffer, shared: Buffer } {
  const e = x25519Ephemeral(priv)
  try {
    return { publicKey: e.publicKey, shared: e.agree(pub) }
  } finally {
    e.dispose()
  }
}

function agree (privateKey: KeyObject, pub: Uint8Array): Buffer {
  assertBytes('X25519 public key', pub, 32)
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(pub) }, format: 'jwk' })
  let out: Buffer
  try {
    out = diffieHellman({ privateKey, publicKey })
  } catch {
    throw new MarshmelloError('MM_ERR_HANDSHAKE', 'X25519 peer key is invalid')
  }
  if (out.every((b) => b === 0)) throw new MarshmelloError('MM_ERR_HANDSHAKE', 'X25519 peer key has low order')
  return out
}

/* ---- Ed25519 with raw 32-byte keys (directory signatures) ---- */

export function ed25519KeyPair (): RawKeyPair {
  const privateKey = nodeRandomBytes(32)
  return { publicKey: ed25519PublicFromPrivate(privateKey), privateKey }
}

export function ed25519PublicFromPrivate (priv: Uint8Array): Buffer {
  assertBytes('Ed25519 private key', priv, 32)
  const k = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, priv]), format: 'der', type: 'pkcs8' })
  return createPublicKey(k).export({ type: 'spki', format: 'der' }).subarray(ED25519_SPKI.length)
}

export function ed25519Sign (priv: Uint8Array, msg: Uint8Array): Buffer {
  assertBytes('Ed25519 private key', priv, 32)
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, priv]), format: 'der', type: 'pkcs8' })
  return nodeSign(null, msg, key)
}

export function ed25519Verify (pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (pub.length !== 32 || sig.length !== 64) return false
  try {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, pub]), format: 'der', type: 'spki' })
    return nodeVerify(null, msg, key, sig)
  } catch {
    return false
  }
}

/** fingerprint of an Ed25519 public key: SHA-256 of its SPKI DER (same rule as RSA identities) */
export const ed25519Fingerprint = (pub: Uint8Array): Buffer => sha256(ED25519_SPKI, pub)

/* ---- RSA identities: OAEP-SHA256 to carry the handshake secret; RSA-PSS to sign descriptors ---- */

export interface RsaIdentity {
  /** SubjectPublicKeyInfo DER */
  publicDer: Buffer
  /** PKCS#8 DER */
  privateDer: Buffer
}

export function rsaGenerate (bits = 2048): RsaIdentity {
  // encoded by the generator itself: no export of a freshly generated KeyObject (see the X25519 note above)
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicExponent: 65537,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  })
  return { publicDer: publicKey, privateDer: privateKey }
}

/** fingerprint = SHA-256 of the SPKI DER (docs/ARCHITECTURE.md §5) */
export const rsaFingerprint = (publicDer: Uint8Array): Buffer => sha256(publicDer)

/**
 * The only RSA identity keys any hop accepts (docs/PROTOCOL.md §7.1): a 2048- or
 * 3072-bit modulus and e = 65537. OpenSSL verifies with any exponent below the
 * modulus, so an RSA-3072 key with a 3,064-bit e costs every verifier ~115× an
 * ordinary check; larger moduli cost more for no gain over 3072 (Tor's identity
 * keys are RSA-1024 with e = 65537, dir-spec §2.1.1; NIST SP 800-56B §6.2 fixes e
 * as odd in [2^16+1, 2^256) — we take the one value every implementation uses).
 */
export const RSA_IDENTITY_BITS: readonly number[] = [2048, 3072]
export const RSA_IDENTITY_EXPONENT = 65537n

function checkIdentityShape (k: KeyObject): void {
  const d = k.asymmetricKeyDetails
  const bits = d?.modulusLength ?? 0
  if (!RSA_IDENTITY_BITS.includes(bits)) throw new MarshmelloError('MM_ERR_IDENTITY_KEY', `identity key must be RSA-2048 or RSA-3072, got a ${bits}-bit modulus`)
  if (d?.publicExponent !== RSA_IDENTITY_EXPONENT) throw new MarshmelloError('MM_ERR_IDENTITY_KEY', 'identity key must have public exponent 65537')
}

/**
 * Throws MM_ERR_KEY (not RSA SPKI DER) or MM_ERR_IDENTITY_KEY (another size or
 * exponent) before any signature or encryption uses the key; a parse, no modexp.
 * Every RSA public key use below goes through the same check.
 */
export function rsaCheckIdentityKey (publicDer: Uint8Array): void {
  publicKeyObject(publicDer)
}

const keyCache = new WeakMap<Uint8Array, KeyObject>()
// public keys by content: callers decode the same listed identity key into a fresh
// buffer per handshake, and a DER import costs ~0.2 ms (OpenSSL 3 decoder lookup)
const PUBLIC_CACHE_MAX = 1024
const publicCache = new Map<string, KeyObject>()
function publicKeyObject (der: Uint8Array): KeyObject {
  const id = b64u(der)
  let k = publicCache.get(id)
  if (!k) {
    try {
      k = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' })
    } catch {
      throw new MarshmelloError('MM_ERR_KEY', 'not an RSA public key (SPKI DER expected)')
    }
    if (k.asymmetricKeyType !== 'rsa') throw new MarshmelloError('MM_ERR_KEY', 'identity key must be RSA')
    checkIdentityShape(k)
    if (publicCache.size >= PUBLIC_CACHE_MAX) publicCache.delete(publicCache.keys().next().value!)
    publicCache.set(id, k)
  }
  return k
}
function privateKeyObject (der: Uint8Array): KeyObject {
  let k = keyCache.get(der)
  if (!k) {
    k = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
    keyCache.set(der, k)
  }
  return k
}

export function rsaModulusBytes (publicDer: Uint8Array): number {
  const bits = publicKeyObject(publicDer).asymmetricKeyDetails?.modulusLength ?? 0
  return bits / 8
}

export function rsaOaepEncrypt (publicDer: Uint8Array, data: Uint8Array): Buffer {
  return publicEncrypt({ key: publicKeyObject(publicDer), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, data)
}

/** null when decryption fails (wrong key or tampered) */
export function rsaOaepDecrypt (privateDer: Uint8Array, data: Uint8Array): Buffer | null {
  try {
    return privateDecrypt({ key: privateKeyObject(privateDer), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, data)
  } catch {
    return null
  }
}

export function rsaSign (privateDer: Uint8Array, msg: Uint8Array): Buffer {
  return nodeSign('sha256', msg, { key: privateKeyObject(privateDer), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
}

export function rsaVerify (publicDer: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  try {
    return nodeVerify('sha256', msg, { key: publicKeyObject(publicDer), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)
  } catch {
    return false
  }
}

/* ---- pooled randomness for padding (one system call per 64 KiB, docs/ARCHITECTURE.md §6) ---- */

const POOL_SIZE = 64 * 1024
let pool = Buffer.alloc(0)
let poolOff = 0

/** fills `out` with random bytes taken from a pooled buffer */
export function fillRandomPadding (out: Uint8Array): void {
  let i = 0
  while (i < out.length) {
    if (poolOff >= pool.length) {
      pool = nodeRandomBytes(POOL_SIZE)
      poolOff = 0
    }
    const n = Math.min(out.length - i, pool.length - poolOff)
    out.set(pool.subarray(poolOff, poolOff + n), i)
    poolOff += n
    i += n
  }
}
