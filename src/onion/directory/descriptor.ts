// A hop's descriptor (docs/PROTOCOL.md §7.1): where it listens, its RSA identity
// key, its TLS certificate (pinned by clients and relays), and a validity period,
// signed with the identity key itself (RSA-PSS-SHA256 over canonical JSON).
// Identity keys are RSA-2048 or RSA-3072 with e = 65537 only; verified descriptors
// are cached by digest, so the consensus re-checked every few seconds costs lookups.
// The address is an IP literal in canonical form, never a name: nothing on a path is
// ever resolved (a name could be re-pointed at 127.0.0.1 after listing).
import { LRUCache } from 'lru-cache'
import { MarshmelloError } from '../../errors.js'
import { rsaCheckIdentityKey, rsaFingerprint, rsaSign, rsaVerify, sha256 } from '../crypto/primitives.js'
import { canonicalIp } from './address.js'
import { canonicalJson } from './canonical.js'

export type HopRole = 'relay' | 'server'

export interface DescriptorBody {
  v: 1
  role: HopRole
  nickname: string
  /** an IP literal in canonical form (dotted quad, or RFC 5952 IPv6 without brackets) */
  host: string
  port: number
  /** base64 SPKI DER of the RSA identity key */
  identityKey: string
  /** hex SHA-256 of identityKey's DER */
  fingerprint: string
  /** PEM of the self-signed TLS certificate */
  tlsCert: string
  /** hex SHA-256 of the certificate DER */
  tlsFingerprint: string
  /** the next TLS certificate, published ahead of a rotation (PROTOCOL §2.1); peers accept either */
  tlsNextCert?: string
  tlsNextFingerprint?: string
  published: number
  expires: number
  /**
   * fingerprints of other relays its operator runs (Tor's MyFamily): two relays are one
   * family only when each names the other (docs/PROTOCOL.md §7.4)
   */
  family?: string[]
}

export interface Descriptor extends DescriptorBody {
  /** base64 RSA-PSS signature by the identity key over canonicalJson(body) */
  signature: string
}

export const HEX64 = /^[0-9a-f]{64}$/
/** most fingerprints one descriptor's family may name */
export const MAX_FAMILY = 64

export function signDescriptor (body: DescriptorBody, identityPrivate: Uint8Array): Descriptor {
  const sig = rsaSign(identityPrivate, Buffer.from(canonicalJson(body)))
  return { ...body, signature: sig.toString('base64') }
}

/** PEM certificate → hex SHA-256 of its DER */
export function certFingerprint (pem: string): string {
  const b64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '')
  return sha256(Buffer.from(b64, 'base64')).toString('hex')
}

const bad = (msg: string) => new MarshmelloError('MM_ERR_DESCRIPTOR', msg)

/**
 * Checks shape, key rules, self-signature, fingerprints and expiry; returns the typed
 * descriptor. Throws MM_ERR_DESCRIPTOR, or MM_ERR_IDENTITY_KEY for a key that is not
 * RSA-2048/3072 with e = 65537 (checked before any RSA operation). Uses the shared
 * cache: see DescriptorVerifier.
 */
export function verifyDescriptor (d: unknown, now: number): Descriptor {
  return descriptorVerifier.verify(d, now)
}

/** the time-dependent part, run on every call (a cached descriptor still expires) */
function checkTimes (x: Descriptor, now: number): Descriptor {
  if (x.expires <= now) throw bad('descriptor has expired')
  if (x.published > now + 5 * 60_000) throw bad('descriptor is published in the future')
  return x
}

export interface DescriptorVerifierInit {
  /** verified descriptors kept (default 4096: above a consensus' relays) */
  max?: number
  /** the uncached check (default verifyDescriptorUncached); tests count calls through it */
  verify?: (d: unknown, now: number) => Descriptor
}

/**
 * Verified descriptors cached by SHA-256 of their canonical JSON (signature
 * included), in a bounded LRU: the same bytes verify the same way, so only the
 * validity period is re-checked on a hit. Failures are not cached (a refused key
 * costs a parse, no modexp). `hits`/`misses` count lookups.
 */
/** canonicalJson of a descriptor; one nesting too deep is a bad descriptor (MM_ERR_DESCRIPTOR), not a crash */
function canonicalOf (d: unknown): string {
  try {
    return canonicalJson(d)
  } catch (err) {
    if (err instanceof RangeError) throw bad(`descriptor ${err.message}`)
    throw err
  }
}

export class DescriptorVerifier {
  private readonly cache: LRUCache<string, Descriptor>
  private readonly check: (d: unknown, now: number) => Descriptor
  hits = 0
  misses = 0

  constructor (init: DescriptorVerifierInit = {}) {
    this.cache = new LRUCache({ max: init.max ?? 4096 })
    this.check = init.verify ?? verifyDescriptorUncached
  }

  verify (d: unknown, now: number): Descriptor {
    if (!d || typeof d !== 'object' || Array.isArray(d)) throw bad('descriptor must be an object')
    const digest = sha256(Buffer.from(canonicalOf(d))).toString('base64')
    const known = this.cache.get(digest)
    if (known) {
      this.hits++
      return checkTimes(known, now)
    }
    this.misses++
    const v = this.check(d, now)
    this.cache.set(digest, v)
    return v
  }

  get size (): number { return this.cache.size }
}

/** the one verifier the directory, relays and clients share in a process */
export const descriptorVerifier = new DescriptorVerifier()

/** verifyDescriptor without the cache: every check, every time */
export function verifyDescriptorUncached (d: unknown, now: number): Descriptor {
  if (!d || typeof d !== 'object') throw bad('descriptor must be an object')
  const x = d as Record<string, unknown>
  if (x.v !== 1) throw bad('descriptor version must be 1')
  if (x.role !== 'relay' && x.role !== 'server') throw bad('descriptor role must be relay or server')
  for (const k of ['nickname', 'host', 'identityKey', 'fingerprint', 'tlsCert', 'tlsFingerprint', 'signature']) {
    if (typeof x[k] !== 'string' || (x[k] as string).length > 8192) throw bad(`descriptor field ${k} must be a string`)
  }
  for (const k of ['port', 'published', 'expires']) if (!Number.isSafeInteger(x[k])) throw bad(`descriptor field ${k} must be an integer`)
  if ((x.port as number) < 1 || (x.port as number) > 65535) throw bad('descriptor port out of range')
  const ip = canonicalIp(x.host as string)
  if (ip === null) throw bad('descriptor host must be an IP address literal (names are never resolved on a path)')
  if (ip !== x.host) throw bad(`descriptor host must be written in canonical form: ${ip}`)
  if (!/^[A-Za-z0-9_-]{0,32}$/.test(x.nickname as string)) throw bad('descriptor nickname must be [A-Za-z0-9_-]{0,32}')
  if (!HEX64.test(x.fingerprint as string) || !HEX64.test(x.tlsFingerprint as string)) throw bad('fingerprints must be 64 hex chars')
  if (x.family !== undefined) {
    if (!Array.isArray(x.family) || x.family.length > MAX_FAMILY) throw bad(`descriptor family must be a list of at most ${MAX_FAMILY} fingerprints`)
    if (!x.family.every((f) => typeof f === 'string' && HEX64.test(f))) throw bad('descriptor family entries must be 64 hex chars')
  }
  const { signature, ...body } = x as unknown as Descriptor
  const key = Buffer.from(body.identityKey, 'base64')
  if (rsaFingerprint(key).toString('hex') !== body.fingerprint) throw bad('fingerprint does not match the identity key')
  rsaCheckIdentityKey(key) // MM_ERR_KEY / MM_ERR_IDENTITY_KEY before any modexp
  if (certFingerprint(body.tlsCert) !== body.tlsFingerprint) throw bad('tlsFingerprint does not match the certificate')
  if (x.tlsNextCert !== undefined || x.tlsNextFingerprint !== undefined) {
    if (typeof x.tlsNextCert !== 'string' || x.tlsNextCert.length > 8192 || typeof x.tlsNextFingerprint !== 'string' || !HEX64.test(x.tlsNextFingerprint)) throw bad('tlsNextCert and tlsNextFingerprint come together: a PEM and 64 hex chars')
    if (certFingerprint(x.tlsNextCert) !== x.tlsNextFingerprint) throw bad('tlsNextFingerprint does not match the next certificate')
  }
  checkTimes(body as Descriptor, now)
  if (!rsaVerify(key, Buffer.from(canonicalOf(body)), Buffer.from(signature, 'base64'))) throw bad('descriptor signature does not verify')
  return x as unknown as Descriptor
}
