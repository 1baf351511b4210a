// A hop's long-term material in its data dir: the RSA identity key and the TLS
// key and self-signed certificate, created at first start and reused after
// restarts (files 0600, dir 0700, written atomically). The Ed25519 directory key
// of the server lives here too.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { rsaCheckIdentityKey, rsaFingerprint, rsaGenerate, ed25519KeyPair, ed25519PublicFromPrivate } from '../../onion/crypto/primitives.js'
import { certificateCovers, certificateFingerprint, selfSignedCertificate } from '../../onion/crypto/certificate.js'
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
}

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
    let tlsKeyPem = existsSync(join(dir, 'tls.key')) ? readFileSync(join(dir, 'tls.key'), 'utf8') : ''
    let tlsCertPem = existsSync(join(dir, 'tls.crt')) ? readFileSync(join(dir, 'tls.crt'), 'utf8') : ''
    const names = [...new Set([host, '127.0.0.1', 'localhost'])]
    if (!tlsKeyPem || !tlsCertPem || !certCovers(tlsCertPem, host)) {
      const m = selfSignedCertificate({ commonName: 'marshmello hop', altNames: names })
      tlsKeyPem = m.keyPem
      tlsCertPem = m.certPem
      writeSecretFile(join(dir, 'tls.key'), tlsKeyPem)
      writeSecretFile(join(dir, 'tls.crt'), tlsCertPem)
    }
    const fingerprint = rsaFingerprint(publicDer)
    return {
      privateDer,
      publicDer,
      fingerprint,
      fingerprintHex: fingerprint.toString('hex'),
      tlsKeyPem,
      tlsCertPem,
      tlsFingerprint: certificateFingerprint(tlsCertPem),
    }
  } catch (err) {
    if (err instanceof MarshmelloError) throw err
    throw new MarshmelloError('MM_ERR_DATA_DIR', `cannot use data dir ${dir}: ${(err as Error).message}`)
  }
}

/** the certificate names `host` and stays valid for a day more */
const certCovers = (pem: string, host: string): boolean => certificateCovers(pem, host, 86_400_000)

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
    published: now,
    expires: now + (d.lifetimeMs ?? 3 * 3600_000),
    ...(d.family && d.family.length > 0 ? { family: [...new Set(d.family.map((f) => f.toLowerCase()))].sort() } : {}),
  }, identity.privateDer)
}
