// Directory documents (docs/PROTOCOL.md §7): canonical JSON, descriptors self-signed
// with RSA-PSS, the consensus signed with the pinned Ed25519 directory key. Any change
// to a signed field breaks the signature; expired descriptors are dropped from a
// consensus; a consensus from another key is refused with MM_ERR_CONSENSUS (P4, P7, P9).
import t from 'tap'
import { createPublicKey, createHash } from 'node:crypto'
import { canonicalJson } from '../../../src/onion/directory/canonical.js'
import { certFingerprint, signDescriptor, verifyDescriptor, type DescriptorBody } from '../../../src/onion/directory/descriptor.js'
import { directoryFingerprint, listedHops, signConsensus, verifyConsensus, type ConsensusBody } from '../../../src/onion/directory/consensus.js'
import { ed25519KeyPair, rsaGenerate } from '../../../src/onion/crypto/primitives.js'
import { selfSignedCertificate } from '../../../src/onion/crypto/certificate.js'
import { codeOf, fixedIdentity } from '../helpers.js'

const NOW = 1_700_000_000_000
const tls = selfSignedCertificate({ commonName: 'relay', altNames: ['127.0.0.1'] })
const other = rsaGenerate(2048)

const body = (over: Partial<DescriptorBody> = {}, id = fixedIdentity): DescriptorBody => ({
  v: 1,
  role: 'relay',
  nickname: 'r1',
  host: '127.0.0.1',
  port: 9001,
  identityKey: id.publicDer.toString('base64'),
  fingerprint: createHash('sha256').update(id.publicDer).digest('hex'),
  tlsCert: tls.certPem,
  tlsFingerprint: certFingerprint(tls.certPem),
  published: NOW - 1000,
  expires: NOW + 3_600_000,
  ...over,
})

t.test('canonicalJson: sorted keys, no whitespace, order independent', async t => {
  t.equal(canonicalJson({ b: 1, a: [3, { z: null, y: 'é' }], c: undefined }), '{"a":[3,{"y":"é","z":null}],"b":1}')
  t.equal(canonicalJson({ x: { q: 1, p: 2 }, w: true }), canonicalJson({ w: true, x: { p: 2, q: 1 } }))
  t.not(canonicalJson([1, 2]), canonicalJson([2, 1]), 'array order is kept')
  t.equal(canonicalJson('a"b'), '"a\\"b"')
})

t.test('descriptor: sign and verify; the certificate fingerprint is SHA-256 of its DER', async t => {
  const d = signDescriptor(body(), fixedIdentity.privateDer)
  t.same(verifyDescriptor(d, NOW), d)
  t.equal(verifyDescriptor(JSON.parse(JSON.stringify(d)), NOW).fingerprint, d.fingerprint, 'survives a JSON round trip')
  const der = Buffer.from(tls.certPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64')
  t.equal(d.tlsFingerprint, createHash('sha256').update(der).digest('hex'))
  // key order of the document does not matter: the signature covers canonical JSON
  const shuffled = Object.fromEntries(Object.entries(d).reverse())
  t.equal(codeOf(() => verifyDescriptor(shuffled, NOW)), 'NO_THROW')
})

t.test('descriptor: any field change breaks it', async t => {
  const d = signDescriptor(body(), fixedIdentity.privateDer)
  const changes: Record<string, unknown> = {
    v: 2, role: 'server', nickname: 'r2', host: '127.0.0.2', port: 9002,
    identityKey: other.publicDer.toString('base64'),
    fingerprint: createHash('sha256').update(other.publicDer).digest('hex'),
    tlsCert: selfSignedCertificate({ commonName: 'x', altNames: ['127.0.0.1'] }).certPem,
    tlsFingerprint: 'ab'.repeat(32),
    published: NOW - 999, expires: NOW + 3_600_001,
    signature: (() => { const s = Buffer.from(d.signature, 'base64'); s[10] ^= 1; return s.toString('base64') })(),
  }
  for (const [k, val] of Object.entries(changes)) {
    t.equal(codeOf(() => verifyDescriptor({ ...d, [k]: val }, NOW)), 'MM_ERR_DESCRIPTOR', `changed ${k}`)
  }
  t.equal(codeOf(() => verifyDescriptor({ ...d, extra: 'x' }, NOW)), 'MM_ERR_DESCRIPTOR', 'an added field')
  // a descriptor re-signed with another key but keeping this key's identity
  const forged = signDescriptor(body(), other.privateDer)
  t.equal(codeOf(() => verifyDescriptor(forged, NOW)), 'MM_ERR_DESCRIPTOR', 'signed by a key other than its identity key')
  // consistent with the other key, it verifies: the identity is the key
  t.equal(codeOf(() => verifyDescriptor(signDescriptor(body({}, { ...fixedIdentity, publicDer: other.publicDer }), other.privateDer), NOW)), 'NO_THROW')
})

t.test('descriptor: shape, ranges, time', async t => {
  const d = signDescriptor(body(), fixedIdentity.privateDer)
  for (const k of Object.keys(d)) {
    const { [k]: _, ...rest } = d as unknown as Record<string, unknown>
    t.equal(codeOf(() => verifyDescriptor(rest, NOW)), 'MM_ERR_DESCRIPTOR', `without ${k}`)
  }
  for (const x of [null, 1, 'x', [], undefined]) t.equal(codeOf(() => verifyDescriptor(x, NOW)), 'MM_ERR_DESCRIPTOR', `not an object: ${String(x)}`)
  const signed = (o: Partial<DescriptorBody>) => signDescriptor(body(o), fixedIdentity.privateDer)
  for (const o of [{ port: 0 }, { port: 65536 }, { host: 'a b' }, { nickname: 'x'.repeat(33) }, { published: 1.5 }, { tlsFingerprint: 'AB'.repeat(32) }]) {
    t.equal(codeOf(() => verifyDescriptor(signed(o as Partial<DescriptorBody>), NOW)), 'MM_ERR_DESCRIPTOR', `validly signed but ${JSON.stringify(o)}`)
  }
  for (const host of ['r1.evil.example', 'localhost', '2001:DB8::1', '[::1]', '::ffff:192.0.2.1', '127.1', '010.0.0.1']) {
    t.equal(codeOf(() => verifyDescriptor(signed({ host }), NOW)), 'MM_ERR_DESCRIPTOR', `host ${host}: an IP literal in canonical form only`)
  }
  for (const host of ['192.0.2.1', '2001:db8::1', '::1']) t.equal(codeOf(() => verifyDescriptor(signed({ host }), NOW)), 'NO_THROW', `host ${host}`)
  t.equal(codeOf(() => verifyDescriptor(signed({ family: ['ab'.repeat(32)] }), NOW)), 'NO_THROW', 'a family of fingerprints')
  for (const family of [['AB'.repeat(32)], 'x', [1], Array(65).fill('ab'.repeat(32))]) {
    t.equal(codeOf(() => verifyDescriptor(signed({ family } as unknown as Partial<DescriptorBody>), NOW)), 'MM_ERR_DESCRIPTOR', `family ${JSON.stringify(family).slice(0, 20)}`)
  }
  t.equal(codeOf(() => verifyDescriptor(d, d.expires)), 'MM_ERR_DESCRIPTOR', 'expired at `expires`')
  t.equal(codeOf(() => verifyDescriptor(d, d.expires - 1)), 'NO_THROW')
  t.equal(codeOf(() => verifyDescriptor(signed({ published: NOW + 5 * 60_000 + 1 }), NOW)), 'MM_ERR_DESCRIPTOR', 'published more than 5 min ahead')
  t.equal(codeOf(() => verifyDescriptor(signed({ published: NOW + 5 * 60_000 }), NOW)), 'NO_THROW', '5 min of clock skew allowed')
})

const dirKey = ed25519KeyPair()
const pinned = directoryFingerprint(dirKey.publicKey)
const relayA = signDescriptor(body(), fixedIdentity.privateDer)
const relayB = signDescriptor(body({ nickname: 'b', port: 9002, identityKey: other.publicDer.toString('base64'), fingerprint: createHash('sha256').update(other.publicDer).digest('hex') }), other.privateDer)
const server = signDescriptor(body({ role: 'server', nickname: 'S', port: 8443, identityKey: other.publicDer.toString('base64'), fingerprint: createHash('sha256').update(other.publicDer).digest('hex') }), other.privateDer)
const cbody = (over: Partial<ConsensusBody> = {}): ConsensusBody => ({
  v: 2, method: 1, validAfter: NOW - 1000, validUntil: NOW + 3_600_000, relays: [relayA, relayB], server, flags: {}, ...over,
})

t.test('directory key fingerprint = SHA-256 of the Ed25519 SPKI DER', async t => {
  const spki = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), dirKey.publicKey]), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'der' })
  t.equal(pinned, createHash('sha256').update(spki).digest('hex'))
})

t.test('consensus: verifies against the pinned key; listedHops', async t => {
  const c = signConsensus(cbody(), dirKey)
  const ok = verifyConsensus(JSON.parse(JSON.stringify(c)), pinned.toUpperCase(), NOW)
  t.equal(ok.relays.length, 2)
  t.equal(ok.server?.nickname, 'S')
  const hops = listedHops(ok)
  t.same([...hops.keys()].sort(), [relayA.fingerprint, relayB.fingerprint].sort(), 'server shares B\'s key here, so 2 fingerprints')
})

t.test('consensus: expired or broken descriptors are dropped, not fatal', async t => {
  const expired = signDescriptor(body({ nickname: 'old', published: NOW - 10_000, expires: NOW - 1 }), fixedIdentity.privateDer)
  const c = signConsensus(cbody({ relays: [relayA, expired, { ...relayB, port: 1 }, 'junk' as never, server] }), dirKey)
  const ok = verifyConsensus(c, pinned, NOW)
  t.same(ok.relays.map((r) => r.nickname), ['r1'], 'expired, tampered, junk and a server entry left out')
})

t.test('consensus: another key, tampering, validity, shape → MM_ERR_CONSENSUS(_THRESHOLD)', async t => {
  const c = signConsensus(cbody(), dirKey)
  const mallory = ed25519KeyPair()
  t.equal(codeOf(() => verifyConsensus(signConsensus(cbody(), mallory), pinned, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'signed by another directory key')
  const claims = { ...signConsensus(cbody(), mallory), signatures: [{ key: dirKey.publicKey.toString('base64'), signature: signConsensus(cbody(), mallory).signatures[0]!.signature }] }
  t.equal(codeOf(() => verifyConsensus(claims, pinned, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'claims the pinned key, signed by another')
  t.equal(codeOf(() => verifyConsensus(c, directoryFingerprint(mallory.publicKey), NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'a different pin')
  for (const [k, val] of Object.entries({ validAfter: NOW - 1, validUntil: NOW + 1, relays: [relayA], server: null, extra: 1 })) {
    t.equal(codeOf(() => verifyConsensus({ ...c, [k]: val }, pinned, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', `changed ${k}: no signature verifies`)
  }
  for (const k of Object.keys(c)) {
    const { [k]: _, ...rest } = c as unknown as Record<string, unknown>
    t.match(codeOf(() => verifyConsensus(rest, pinned, NOW)), /^MM_ERR_CONSENSUS(_THRESHOLD)?$/, `without ${k}`)
  }
  t.equal(codeOf(() => verifyConsensus({ ...c, signatures: Array(17).fill(c.signatures[0]) }, pinned, NOW)), 'MM_ERR_CONSENSUS', 'more signatures than authorities may be')
  t.equal(codeOf(() => verifyConsensus({ ...c, v: 1, signature: c.signatures[0]!.signature }, pinned, NOW)), 'MM_ERR_CONSENSUS', 'the single-key v1 format is refused')
  t.equal(codeOf(() => verifyConsensus(c, pinned, c.validUntil + 1)), 'MM_ERR_CONSENSUS', 'expired')
  t.equal(codeOf(() => verifyConsensus(c, pinned, c.validAfter - 60_001)), 'MM_ERR_CONSENSUS', 'not valid yet')
  t.equal(codeOf(() => verifyConsensus(c, pinned, c.validAfter - 60_000)), 'NO_THROW', '1 min of clock skew allowed')
  for (const x of [null, 'x', 1, []]) t.equal(codeOf(() => verifyConsensus(x, pinned, NOW)), 'MM_ERR_CONSENSUS', `not an object: ${JSON.stringify(x)}`)
  const sig = Buffer.from(c.signatures[0]!.signature, 'base64')
  const flips: string[] = []
  for (let bit = 0; bit < 512; bit += 5) { const s = Buffer.from(sig); s[bit >> 3] ^= 1 << (bit & 7); flips.push(codeOf(() => verifyConsensus({ ...c, signatures: [{ ...c.signatures[0]!, signature: s.toString('base64') }] }, pinned, NOW))) }
  t.same([...new Set(flips)], ['MM_ERR_CONSENSUS_THRESHOLD'], 'signature bit flips')
})

t.test('consensus: a server entry that does not verify makes the whole consensus fail', async t => {
  const expiredServer = signDescriptor(body({ role: 'server', published: NOW - 10_000, expires: NOW - 1 }), fixedIdentity.privateDer)
  t.equal(codeOf(() => verifyConsensus(signConsensus(cbody({ server: expiredServer }), dirKey), pinned, NOW)), 'MM_ERR_DESCRIPTOR', 'as built: the descriptor code surfaces (§7.2)')
  t.equal(codeOf(() => verifyConsensus(signConsensus(cbody({ server: relayA }), dirKey), pinned, NOW)), 'MM_ERR_CONSENSUS', 'server entry with role relay')
})
