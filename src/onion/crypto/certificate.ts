// Self-signed X.509 certificates for the HTTPS/WebSocket channels, and reading them:
// node:crypto makes the key, node-forge builds and signs the certificate. Peers pin the
// certificate by its SHA-256 fingerprint from the signed directory, so no CA is
// involved. Pure: PEM in, PEM out.
import forge from 'node-forge'
import { X509Certificate, constants, generateKeyPairSync, randomBytes } from 'node:crypto'

export interface TlsMaterial {
  keyPem: string
  certPem: string
}

export interface CertificateInit {
  commonName: string
  /** IP addresses and DNS names for subjectAltName */
  altNames: string[]
  /** validity in days (default LINK_CERT_DAYS) */
  days?: number
  /** ms since the epoch the validity starts from (default now) */
  now?: number
}

/** link certificates are valid this many days (docs/PROTOCOL.md §2.1) and rotated before they expire */
export const LINK_CERT_DAYS = 14

/**
 * OpenSSL's SSL_OP_NO_TICKET for link servers: no stateless session tickets (state a
 * hop could recognise a returning peer by). In TLS 1.3 OpenSSL then sends stateful
 * tickets (a bare session id), which resume nothing, since Node keeps no server-side
 * session cache (docs/PROTOCOL.md §2.1).
 */
export const TLS_NO_TICKET: number = constants.SSL_OP_NO_TICKET

const IP_RE = /^(\d{1,3}\.){3}\d{1,3}$|:/

export function selfSignedCertificate (init: CertificateInit): TlsMaterial {
  // encoded by the generator itself: PEM out in one step, no separate export of the key
  const { publicKey: pubPem, privateKey: keyPem } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(pubPem)
  // positive 16-byte serial
  const serial = randomBytes(16)
  serial[0] &= 0x7f
  cert.serialNumber = serial.toString('hex')
  const now = init.now ?? Date.now()
  cert.validity.notBefore = new Date(now - 60_000)
  cert.validity.notAfter = new Date(now + (init.days ?? LINK_CERT_DAYS) * 86_400_000)
  const attrs = [{ name: 'commonName', value: init.commonName }]
  cert.setSubject(attrs)
  cert.setIssuer(attrs)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: init.altNames.map((n) => IP_RE.test(n) ? { type: 7, ip: n } : { type: 2, value: n }) },
  ])
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create())
  return { keyPem, certPem: forge.pki.certificateToPem(cert) }
}

/** SHA-256 of a certificate (DER or PEM) as 64 lowercase hex characters: a descriptor's tlsFingerprint. */
export function certificateFingerprint (cert: Uint8Array | string): string {
  return new X509Certificate(cert).fingerprint256.replace(/:/g, '').toLowerCase()
}

/** a certificate's validity period, ms since the epoch; null for an unreadable one */
export function certificateValidity (pem: string): { notBefore: number, notAfter: number } | null {
  try {
    const c = new X509Certificate(pem)
    return { notBefore: new Date(c.validFrom).getTime(), notAfter: new Date(c.validTo).getTime() }
  } catch {
    return null
  }
}

/** True when the PEM certificate names `host` (IP or DNS) and stays valid for `minValidMs` more; false for an unreadable one. */
export function certificateCovers (pem: string, host: string, minValidMs: number, now = Date.now()): boolean {
  try {
    const c = new X509Certificate(pem)
    if (new Date(c.validTo).getTime() < now + minValidMs) return false
    return c.checkIP(host) !== undefined || c.checkHost(host) !== undefined
  } catch {
    return false
  }
}
