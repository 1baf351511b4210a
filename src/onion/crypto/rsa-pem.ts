// RSA identity keys between their stored form (PKCS#8 PEM, a hop's identity.key) and
// the DER pair primitives.ts works with. Leaves out where the file lives
// (roles/common/identity.ts).
import { createPrivateKey, createPublicKey } from 'node:crypto'
import type { RsaIdentity } from './primitives.js'

/** PKCS#8 DER → PKCS#8 PEM, for writing a fresh identity to disk. */
export function rsaPrivatePem (privateDer: Uint8Array): string {
  return createPrivateKey({ key: Buffer.from(privateDer), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString()
}

/** A stored PEM private key → its DER pair (SPKI public, PKCS#8 private). */
export function rsaIdentityFromPem (pem: string): RsaIdentity {
  const priv = createPrivateKey(pem)
  return {
    privateDer: priv.export({ type: 'pkcs8', format: 'der' }),
    publicDer: createPublicKey(priv).export({ type: 'spki', format: 'der' }),
  }
}
