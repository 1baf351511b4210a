// The shared fingerprints and secret comparison (src/onion/crypto/fingerprints.ts),
// the certificate fingerprint (certificate.ts): checked against hand-computed SHA-256,
// and the client's keyFingerprint shown to be the same function of the same bytes.
import t from 'tap'
import { X509Certificate, createHash } from 'node:crypto'
import { secretMatcher, secretsEqual, sha256Hex, userKeyFingerprint } from '../../../src/onion/crypto/fingerprints.js'
import { certificateCovers, certificateFingerprint, selfSignedCertificate } from '../../../src/onion/crypto/certificate.js'
import { keyFingerprint } from '../../../src/roles/client/e2e/keys.js'

t.test('userKeyFingerprint is hex SHA-256 over enc ‖ sign, as the client computes it', async t => {
  const enc = Buffer.alloc(32, 1)
  const sign = Buffer.alloc(32, 2)
  const want = createHash('sha256').update(Buffer.concat([enc, sign])).digest('hex')
  t.equal(userKeyFingerprint(enc, sign), want)
  t.equal(keyFingerprint({ enc: enc.toString('base64'), sign: sign.toString('base64') }), want, 'client, from base64')
  t.not(userKeyFingerprint(sign, enc), want, 'order matters')
})

t.test('sha256Hex', async t => {
  t.equal(sha256Hex(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'FIPS 180-2 "abc"')
})

t.test('secretMatcher compares in constant time whatever the lengths', async t => {
  const m = secretMatcher('s3cret-token-value')
  t.equal(m('s3cret-token-value'), true)
  t.equal(m('s3cret-token-valuf'), false)
  t.equal(m(''), false)
  t.equal(m('s3cret-token-value-and-more'), false)
  t.equal(secretsEqual('a', 'a'), true)
  t.equal(secretsEqual('a', 'b'), false)
})

t.test('certificateFingerprint is SHA-256 of the DER; certificateCovers checks names and validity', async t => {
  const { certPem } = selfSignedCertificate({ commonName: 'test', altNames: ['127.0.0.1', 'localhost'], days: 2 })
  const der = new X509Certificate(certPem).raw
  const want = createHash('sha256').update(der).digest('hex')
  t.equal(certificateFingerprint(certPem), want, 'from PEM')
  t.equal(certificateFingerprint(der), want, 'from DER')
  t.equal(certificateCovers(certPem, '127.0.0.1', 86_400_000), true)
  t.equal(certificateCovers(certPem, '10.0.0.1', 86_400_000), false, 'another address')
  t.equal(certificateCovers(certPem, '127.0.0.1', 3 * 86_400_000), false, 'expires too soon')
  t.equal(certificateCovers('not a certificate', '127.0.0.1', 0), false)
})
