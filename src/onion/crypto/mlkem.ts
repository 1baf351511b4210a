// ML-KEM-768 (FIPS 203) over node:crypto (OpenSSL 3.5, Node 24): key pairs from a 64-byte
// seed (d ‖ z, FIPS 203 §7.1 ML-KEM.KeyGen_internal), the 1184-byte encapsulation key,
// encapsulation and decapsulation. Keys cross this boundary as raw bytes: the seed (private)
// and the encapsulation key (public). Leaves out deterministic encapsulation, which node does
// not expose: vectors fix the ciphertext instead (pqxdh.ts).
import { createPrivateKey, createPublicKey, decapsulate, encapsulate, type KeyObject } from 'node:crypto'
import { MarshmelloError, lengthError } from '../../errors.js'
import { randomBytes } from './random.js'

export const MLKEM_SEED_BYTES = 64
export const MLKEM_PUBLIC_BYTES = 1184
export const MLKEM_CIPHERTEXT_BYTES = 1088
export const MLKEM_SHARED_BYTES = 32

// DER headers (RFC 9935 / draft-ietf-lamps-kyber-certificates): OID 2.16.840.1.101.3.4.4.2,
// the PKCS#8 private key in its seed-only form, the SPKI with the raw encapsulation key.
const PKCS8_SEED_PREFIX = Buffer.from('3054020100300b0609608648016503040402044280' + '40', 'hex')
const SPKI_PREFIX = Buffer.from('308204b2300b0609608648016503040402038204a100', 'hex')

function privateKey (seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== MLKEM_SEED_BYTES) throw lengthError('ML-KEM-768 seed', String(MLKEM_SEED_BYTES), seed?.length ?? 0)
  const der = Buffer.concat([PKCS8_SEED_PREFIX, seed])
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } finally {
    der.fill(0)
  }
}

function publicKey (pub: Uint8Array): KeyObject {
  if (!(pub instanceof Uint8Array) || pub.length !== MLKEM_PUBLIC_BYTES) throw lengthError('ML-KEM-768 public key', String(MLKEM_PUBLIC_BYTES), pub?.length ?? 0)
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' })
  } catch {
    /** Thrown when 1184 bytes are not an ML-KEM-768 encapsulation key (FIPS 203 §7.2 modulus check). */
    throw new MarshmelloError('MM_ERR_BAD_KEY', 'not an ML-KEM-768 public key')
  }
}

export interface MlKemKeyPair {
  /** the 64-byte seed d ‖ z: the private key as stored */
  seed: Buffer
  /** the 1184-byte encapsulation key */
  publicKey: Buffer
}

/** The key pair of `seed` (default: a fresh random seed). */
export function mlkemKeyPair (seed: Uint8Array = randomBytes(MLKEM_SEED_BYTES)): MlKemKeyPair {
  const k = privateKey(seed)
  const spki = createPublicKey(k).export({ format: 'der', type: 'spki' })
  return { seed: Buffer.from(seed), publicKey: Buffer.from(spki.subarray(SPKI_PREFIX.length)) }
}

/** ML-KEM.Encaps(pub): a fresh shared secret and the ciphertext that carries it. */
export function mlkemEncapsulate (pub: Uint8Array): { ciphertext: Buffer, sharedSecret: Buffer } {
  const r = encapsulate(publicKey(pub))
  return { ciphertext: Buffer.from(r.ciphertext), sharedSecret: Buffer.from(r.sharedKey) }
}

/**
 * ML-KEM.Decaps(seed, ct). A wrong ciphertext of the right length yields an unrelated
 * secret (implicit rejection, FIPS 203 §7.3): the AEAD after the KDF refuses it.
 */
export function mlkemDecapsulate (seed: Uint8Array, ciphertext: Uint8Array): Buffer {
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length !== MLKEM_CIPHERTEXT_BYTES) throw lengthError('ML-KEM-768 ciphertext', String(MLKEM_CIPHERTEXT_BYTES), ciphertext?.length ?? 0)
  return Buffer.from(decapsulate(privateKey(seed), ciphertext))
}
