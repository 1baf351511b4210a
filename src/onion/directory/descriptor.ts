// A hop's descriptor (docs/PROTOCOL.md §7.1): where it listens, its RSA identity
// key, its TLS certificate (pinned by clients and relays), and a validity period,
// signed with the identity key itself (RSA-PSS-SHA256 over canonical JSON).
import { MarshmelloError } from '../../errors.js'
import { rsaFingerprint, rsaSign, rsaVerify, sha256 } from '../crypto/primitives.js'
import { canonicalJson } from './canonical.js'

export type HopRole = 'relay' | 'server'

export interface DescriptorBody {
  v: 1
  role: HopRole
  nickname: string
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
  published: number
  expires: number
}

export interface Descriptor extends DescriptorBody {
  /** base64 RSA-PSS signature by the identity key over canonicalJson(body) */
  signature: string
}

export const HEX64 = /^[0-9a-f]{64}$/

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

/** Checks shape, self-signature, fingerprints and expiry. Returns the typed descriptor. */
export function verifyDescriptor (d: unknown, now: number): Descriptor {
  if (!d || typeof d !== 'object') throw bad('descriptor must be an object')
  const x = d as Record<string, unknown>
  if (x.v !== 1) throw bad('descriptor version must be 1')
  if (x.role !== 'relay' && x.role !== 'server') throw bad('descriptor role must be relay or server')
  for (const k of ['nickname', 'host', 'identityKey', 'fingerprint', 'tlsCert', 'tlsFingerprint', 'signature']) {
    if (typeof x[k] !== 'string' || (x[k] as string).length > 8192) throw bad(`descriptor field ${k} must be a string`)
  }
  for (const k of ['port', 'published', 'expires']) if (!Number.isSafeInteger(x[k])) throw bad(`descriptor field ${k} must be an integer`)
  if ((x.port as number) < 1 || (x.port as number) > 65535) throw bad('descriptor port out of range')
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(x.host as string)) throw bad('descriptor host is not a hostname or address')
  if (!/^[A-Za-z0-9_-]{0,32}$/.test(x.nickname as string)) throw bad('descriptor nickname must be [A-Za-z0-9_-]{0,32}')
  if (!HEX64.test(x.fingerprint as string) || !HEX64.test(x.tlsFingerprint as string)) throw bad('fingerprints must be 64 hex chars')
  const { signature, ...body } = x as unknown as Descriptor
  const key = Buffer.from(body.identityKey, 'base64')
  if (rsaFingerprint(key).toString('hex') !== body.fingerprint) throw bad('fingerprint does not match the identity key')
  if (certFingerprint(body.tlsCert) !== body.tlsFingerprint) throw bad('tlsFingerprint does not match the certificate')
  if (body.expires <= now) throw bad('descriptor has expired')
  if (body.published > now + 5 * 60_000) throw bad('descriptor is published in the future')
  if (!rsaVerify(key, Buffer.from(canonicalJson(body)), Buffer.from(signature, 'base64'))) throw bad('descriptor signature does not verify')
  return x as unknown as Descriptor
}
