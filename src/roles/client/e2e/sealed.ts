// The client's side of sealed sender (docs/PROTOCOL.md §12): sealing opaque inner DM
// bytes for a recipient with our sender certificate and access key, and opening a
// stored envelope: the static layer proves the sender's identity key, the certificate
// must be signed through the pinned directory key, unexpired, and name that same key
// (Signal's `sealed_sender_decrypt` checks). Whether that key is the contact's pinned
// one is the caller's check (chat-client.ts). The envelope format is onion/sealed.

import { openEnvelope, sealEnvelope } from '../../../onion/sealed/sealed-envelope.js'
import { CertificateError, verifySenderCertificate, type SenderCertificate } from '../../../onion/sealed/sender-certificate.js'
import { deliveryToken, tokenVerifier } from '../../../onion/sealed/delivery-token.js'
import { equalBytes } from '../../../onion/crypto/primitives.js'

export interface OpenedSealed {
  sender: string
  senderIdentity: Buffer
  certificate: SenderCertificate
  /** the sender's access key, for answering with a delivery token */
  accessKey?: Buffer
  inner: Buffer
}

/** the base64url body of a sealed send */
export function sealFor (init: { recipientIdentity: Uint8Array, senderIdentityPrivate: Uint8Array, senderCertificate: Uint8Array, accessKey?: Uint8Array, inner: Uint8Array }): string {
  return sealEnvelope(init).toString('base64url')
}

/**
 * Opens and checks a sealed DM. Throws MM_ERR_SEALED (does not open) or
 * MM_ERR_SENDER_CERT (CertificateError: bad chain, expired, or naming another key).
 */
export function openSealed (body: string, init: { myIdentityPrivate: Uint8Array, pinnedRoot: string, now: number }): OpenedSealed {
  const u = openEnvelope(Buffer.from(body, 'base64url'), init.myIdentityPrivate)
  const certificate = verifySenderCertificate(u.senderCertificate, init.pinnedRoot, init.now)
  if (!equalBytes(certificate.identityKey, u.senderIdentity)) {
    throw new CertificateError('identity-mismatch', 'the sender certificate names another identity key than the one that sealed the message')
  }
  return { sender: certificate.username, senderIdentity: u.senderIdentity, certificate, accessKey: u.accessKey, inner: u.inner }
}

/** what a user gives the server for its access key: the verifier (base64 SHA-256 of the delivery token) */
export const accessVerifier = (accessKey: Uint8Array): string => tokenVerifier(deliveryToken(accessKey)).toString('base64')

/** the delivery token a contact's access key yields, as a sealed send carries it (base64url) */
export const deliveryTokenFor = (accessKey: Uint8Array): string => deliveryToken(accessKey).toString('base64url')
