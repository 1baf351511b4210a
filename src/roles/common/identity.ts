// A hop's long-term material in its data dir: the RSA identity key and the TLS
// key and self-signed certificate, created at first start and reused after
// restarts (files 0600, dir 0700, written atomically). The Ed25519 directory key
// of the server lives here too.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { rsaCheckIdentityKey, rsaFingerprint, rsaGenerate, ed25519KeyPair, ed25519PublicFromPrivate } from '../../onion/crypto/primitives.js'
import { LINK_CERT_DAYS, certificateCovers, certificateFingerprint, certificateValidity, selfSignedCertificate } from '../../onion/crypto/certificate.js'
import { rsaIdentityFromPem, rsaPrivatePem } from '../../onion/crypto/rsa-pem.js'
import { MarshmelloError } from '../../errors.js'
import { signDescriptor, type Descriptor, type HopRole } from '../../onion/directory/descriptor.js'

export interface HopIdentity {
  privateDer: Buffer
  publicDer: Buffer
  fingerprint: Buffer
  fingerprintHex: string
  tlsKeyPem: string
  tlsCertPem: string
  tlsFingerprint: string
  /** the next certificate, made and published ahead of the rotation (docs/PROTOCOL.md §2.1) */
  tlsNextCertPem?: string
  tlsNextFingerprint?: string
}

/** the next link certificate is made (and listed in descriptors) when the current one has this little left */
export const LINK_CERT_PUBLISH_AHEAD_MS = 7 * 86_400_000
/** the next certificate replaces the current one when the current one has this little left */
export const LINK_CERT_SWITCH_MS = 2 * 86_400_000

export function ensureDir (dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
}

export function writeSecretFile (path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, data, { mode: 0o600 })
  renameSync(tmp, path)
  chmodSync(path, 0o600)
}

function readOrCreate (path: string, make: () => string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8')
  const v = make()
  writeSecretFile(path, v)
  return v
}

export function loadOrCreateIdentity (dir: string, host: string): HopIdentity {
  try {
    ensureDir(dir)
    const idPem = readOrCreate(join(dir, 'identity.key'), () => {
      return rsaPrivatePem(rsaGenerate(2048).privateDer)
    })
    const { privateDer, publicDer } = rsaIdentityFromPem(idPem)
    try {
      rsaCheckIdentityKey(publicDer) // every other hop would refuse this key (docs/PROTOCOL.md §7.1): say so at start
    } catch (err) {
      throw new MarshmelloError('MM_ERR_IDENTITY_KEY', `${join(dir, 'identity.key')}: ${(err as Error).message}; move it away to make a new RSA-2048 identity`)
    }
    const fingerprint = rsaFingerprint(publicDer)
    const identity: HopIdentity = { privateDer, publicDer, fingerprint, fingerprintHex: fingerprint.toString('hex'), tlsKeyPem: '', tlsCertPem: '', tlsFingerprint: '' }
    rotateLinkCertificates(dir, host, identity)
    return identity
  } catch (err) {
    if (err instanceof MarshmelloError) throw err
    throw new MarshmelloError('MM_ERR_DATA_DIR', `cannot use data dir ${dir}: ${(err as Error).message}`)
  }
}

const readPair = (dir: string, name: string): { keyPem: string, certPem: string } | null =>
  existsSync(join(dir, `${name}.key`)) && existsSync(join(dir, `${name}.crt`))
    ? { keyPem: readFileSync(join(dir, `${name}.key`), 'utf8'), certPem: readFileSync(join(dir, `${name}.crt`), 'utf8') }
    : null
const writePair = (dir: string, name: string, m: { keyPem: string, certPem: string }): void => {
  writeSecretFile(join(dir, `${name}.key`), m.keyPem)
  writeSecretFile(join(dir, `${name}.crt`), m.certPem)
}

/**
 * Keeps the link certificates in `dir` (docs/PROTOCOL.md §2.1): `tls.crt` (current,
 * served) valid LINK_CERT_DAYS; when it has under LINK_CERT_PUBLISH_AHEAD_MS left,
 * `tls-next.crt` is made and listed in descriptors beside it; when it has under
 * LINK_CERT_SWITCH_MS left (or does not name `host`, or is valid longer than the
 * rule, as the 10-year ones of earlier builds), the next one becomes current. Updates
 * `identity`'s TLS fields; true when the served certificate changed.
 */
export function rotateLinkCertificates (dir: string, host: string, identity: HopIdentity, now = Date.now()): boolean {
  const names = [...new Set([host, '127.0.0.1', 'localhost'])]
  // a subject of its own per certificate: with two pinned anchors of one name, OpenSSL would try only the first
  const make = () => selfSignedCertificate({ commonName: `marshmello hop ${new Date(now).toISOString()}`, altNames: names, now })
  const usable = (m: { certPem: string } | null, leftMs: number): boolean => {
    if (!m || !certificateCovers(m.certPem, host, leftMs, now)) return false
    const v = certificateValidity(m.certPem)
    return v !== null && v.notBefore <= now + 60_000 && v.notAfter - v.notBefore <= (LINK_CERT_DAYS + 1) * 86_400_000
  }
  const stored = readPair(dir, 'tls')
  let next = readPair(dir, 'tls-next')
  if (!usable(next, LINK_CERT_SWITCH_MS)) next = null
  let current: { keyPem: string, certPem: string }
  if (stored && usable(stored, LINK_CERT_SWITCH_MS)) {
    current = stored
  } else {
    current = next ?? make()
    next = null
    writePair(dir, 'tls', current)
  }
  if (!next && !certificateCovers(current.certPem, host, LINK_CERT_PUBLISH_AHEAD_MS, now)) {
    next = make()
    writePair(dir, 'tls-next', next)
  }
  if (!next) for (const f of ['tls-next.key', 'tls-next.crt']) rmSync(join(dir, f), { force: true })
  const changed = identity.tlsCertPem !== current.certPem
  identity.tlsKeyPem = current.keyPem
  identity.tlsCertPem = current.certPem
  identity.tlsFingerprint = certificateFingerprint(current.certPem)
  identity.tlsNextCertPem = next?.certPem
  identity.tlsNextFingerprint = next ? certificateFingerprint(next.certPem) : undefined
  return changed
}

/** the server's Ed25519 directory signing key (raw private 32 bytes, hex in a 0600 file) */
export function loadOrCreateDirectoryKey (dir: string): { privateKey: Buffer, publicKey: Buffer } {
  ensureDir(dir)
  const hex = readOrCreate(join(dir, 'directory.key'), () => ed25519KeyPair().privateKey.toString('hex') + '\n').trim()
  const privateKey = Buffer.from(hex, 'hex')
  if (privateKey.length !== 32) throw new MarshmelloError('MM_ERR_DATA_DIR', `${join(dir, 'directory.key')} is corrupt`)
  return { privateKey, publicKey: ed25519PublicFromPrivate(privateKey) }
}

/** this hop's descriptor (docs/PROTOCOL.md §7.1), freshly signed with its identity key */
export function hopDescriptor (identity: HopIdentity, d: { role: HopRole, nickname: string, host: string, port: number, lifetimeMs?: number, family?: string[] }): Descriptor {
  const now = Date.now()
  return signDescriptor({
    v: 1,
    role: d.role,
    nickname: d.nickname,
    host: d.host,
    port: d.port,
    identityKey: identity.publicDer.toString('base64'),
    fingerprint: identity.fingerprintHex,
    tlsCert: identity.tlsCertPem,
    tlsFingerprint: identity.tlsFingerprint,
    ...(identity.tlsNextCertPem ? { tlsNextCert: identity.tlsNextCertPem, tlsNextFingerprint: identity.tlsNextFingerprint } : {}),
    published: now,
    expires: now + (d.lifetimeMs ?? 3 * 3600_000),
    ...(d.family && d.family.length > 0 ? { family: [...new Set(d.family.map((f) => f.toLowerCase()))].sort() } : {}),
  }, identity.privateDer)
}
