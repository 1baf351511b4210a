// TLS for every relay and server port and every link to one (docs/PROTOCOL.md §2.1):
// TLS 1.3 only (every peer is this program: no TLS 1.2 suites without forward
// secrecy), no session tickets or other resumption state that outlives a connection,
// and certificates pinned by the fingerprints a signed descriptor lists: the current
// one, and the next one a hop publishes ahead of its rotation.
import type { ConnectionOptions, SecureContextOptions, TlsOptions } from 'node:tls'
import { TLS_NO_TICKET, certificateFingerprint } from '../../onion/crypto/certificate.js'

/** what a server needs: its current key and certificate */
export interface LinkCertificate { tlsKeyPem: string, tlsCertPem: string }

/** the certificates a descriptor lists for a hop (docs/PROTOCOL.md §7.1) */
export interface LinkPins { tlsCert: string, tlsFingerprint: string, tlsNextCert?: string, tlsNextFingerprint?: string }

/** server options: TLS 1.3 only, no stateless tickets, no session cache (Node keeps none by default) */
export function linkServerTls (c: LinkCertificate): TlsOptions & SecureContextOptions {
  return { key: c.tlsKeyPem, cert: c.tlsCertPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', secureOptions: TLS_NO_TICKET }
}

/**
 * Client options pinned to the hop's listed certificates: either the current or the
 * listed next one is accepted (a rotation, §2.1), by SHA-256 of the certificate; TLS
 * 1.3 only; no session is offered for resumption (none is ever stored).
 */
export function pinnedClientTls (p: LinkPins): ConnectionOptions {
  const pins = [p.tlsFingerprint, ...(p.tlsNextFingerprint ? [p.tlsNextFingerprint] : [])]
  return {
    ca: [p.tlsCert, ...(p.tlsNextCert ? [p.tlsNextCert] : [])],
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // the certificate is the pinned trust anchor; its name is irrelevant, its hash is not
    checkServerIdentity: (_host, cert) => pins.includes(certificateFingerprint(cert.raw)) ? undefined : new Error('certificate does not match the pinned fingerprint'),
  }
}
