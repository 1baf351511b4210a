// Descriptor key rules and the verified-descriptor cache (docs/PROTOCOL.md §7.1):
// the huge-exponent attack (RSA-3072 with a ~3,064-bit e, which OpenSSL verifies at
// ~115× the cost of e = 65537) is refused with MM_ERR_IDENTITY_KEY at registration
// (the directory's POST), in a consensus (every client and relay) and in a handshake;
// so are RSA-1024, RSA-4096 and e = 3. The same descriptor verified again is a cache
// hit, counted through an injected verifier, not timed.
import t from 'tap'
import Fastify from 'fastify'
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, verify as nodeVerify, constants } from 'node:crypto'
import { promisify } from 'node:util'
import { canonicalJson } from '../../../src/onion/directory/canonical.js'
import { DescriptorVerifier, certFingerprint, signDescriptor, verifyDescriptor, verifyDescriptorUncached, type Descriptor } from '../../../src/onion/directory/descriptor.js'
import { signConsensus, verifyConsensus, directoryFingerprint } from '../../../src/onion/directory/consensus.js'
import { ed25519KeyPair, rsaFingerprint, rsaOaepEncrypt, rsaVerify, type RsaIdentity } from '../../../src/onion/crypto/primitives.js'
import { selfSignedCertificate } from '../../../src/onion/crypto/certificate.js'
import { clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { installErrorHandler } from '../../../src/roles/common/http-errors.js'
import { Directory, directoryRoutes } from '../../../src/roles/server/directory.js'
import { codeOf, fixedIdentity } from '../helpers.js'

const NOW = Date.now()
const tls = selfSignedCertificate({ commonName: 'relay', altNames: ['127.0.0.1'] })
const gen = promisify(generateKeyPair)

async function rsa (bits: number, publicExponent = 65537): Promise<RsaIdentity> {
  const { publicKey, privateKey } = await gen('rsa', { modulusLength: bits, publicExponent, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } })
  return { publicDer: publicKey as unknown as Buffer, privateDer: privateKey as unknown as Buffer }
}

const b2n = (b: string): bigint => BigInt('0x' + Buffer.from(b, 'base64url').toString('hex'))
const n2b = (n: bigint): string => { const h = n.toString(16); return Buffer.from(h.length % 2 ? '0' + h : h, 'hex').toString('base64url') }
function inverse (a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n]
  while (r1 !== 0n) { const q = r0 / r1;[r0, r1] = [r1, r0 - q * r1];[s0, s1] = [s1, s0 - q * s1] }
  if (r0 !== 1n) throw new Error('not invertible')
  return ((s0 % m) + m) % m
}
const gcd = (a: bigint, b: bigint): bigint => { while (b) [a, b] = [b, a % b]; return a }

/**
 * The attacker's key: a real RSA-3072 modulus with a random odd 3,064-bit public
 * exponent and its matching private exponent, so it signs descriptors that verify.
 */
async function hugeExponentKey (): Promise<RsaIdentity & { eBits: number }> {
  const base = await rsa(3072)
  const jwk = createPrivateKey({ key: base.privateDer, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' })
  const [p, q] = [b2n(jwk.p!), b2n(jwk.q!)]
  const lambda = (p - 1n) * (q - 1n) / gcd(p - 1n, q - 1n)
  let e: bigint
  do {
    const r = randomBytes(383) // 3,064 bits
    r[0] |= 0x80
    r[382] |= 1
    e = BigInt('0x' + r.toString('hex'))
  } while (gcd(e, lambda) !== 1n)
  const d = inverse(e, lambda)
  const key = createPrivateKey({ format: 'jwk', key: { kty: 'RSA', n: jwk.n, e: n2b(e), d: n2b(d), p: jwk.p, q: jwk.q, dp: n2b(d % (p - 1n)), dq: n2b(d % (q - 1n)), qi: n2b(inverse(q, p)) } })
  return {
    publicDer: createPublicKey(key).export({ type: 'spki', format: 'der' }),
    privateDer: key.export({ type: 'pkcs8', format: 'der' }),
    eBits: e.toString(2).length,
  }
}

let published = NOW - 1000
function descriptor (id: RsaIdentity, port = 9001): Descriptor {
  published += 1
  return signDescriptor({
    v: 1, role: 'relay', nickname: 'r', host: '127.0.0.1', port,
    identityKey: id.publicDer.toString('base64'), fingerprint: rsaFingerprint(id.publicDer).toString('hex'),
    tlsCert: tls.certPem, tlsFingerprint: certFingerprint(tls.certPem), published, expires: NOW + 3_600_000,
  }, id.privateDer)
}

/** the signature checked with node:crypto directly, no key rule: the descriptor is otherwise valid */
function signatureVerifiesRaw (d: Descriptor): boolean {
  const { signature, ...body } = d
  const key = createPublicKey({ key: Buffer.from(d.identityKey, 'base64'), format: 'der', type: 'spki' })
  return nodeVerify('sha256', Buffer.from(canonicalJson(body)), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(signature, 'base64'))
}

const keys = Promise.all([hugeExponentKey(), rsa(1024), rsa(4096), rsa(2048, 3), rsa(3072)])

t.test('the huge-exponent descriptor is refused at the directory, by every verifier and in a handshake', async (t) => {
  const [huge] = await keys
  t.ok(huge.eBits >= 3060 && huge.eBits <= 3064, `public exponent of ${huge.eBits} bits`)
  t.equal(createPublicKey({ key: huge.publicDer, format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength, 3072)
  const d = descriptor(huge)
  t.ok(signatureVerifiesRaw(d), 'its signature verifies under plain OpenSSL: only the key rule refuses it')

  t.equal(codeOf(() => verifyDescriptorUncached(d, NOW)), 'MM_ERR_IDENTITY_KEY', 'verifyDescriptor refuses it')
  t.equal(codeOf(() => verifyDescriptor(d, NOW)), 'MM_ERR_IDENTITY_KEY', 'and the shared cached path too (failures are not cached)')
  t.equal(codeOf(() => verifyDescriptor(d, NOW)), 'MM_ERR_IDENTITY_KEY', 'every time')
  t.notOk(rsaVerify(huge.publicDer, Buffer.from('x'), Buffer.alloc(384)), 'rsaVerify never runs the modexp for it')
  t.equal(codeOf(() => rsaOaepEncrypt(huge.publicDer, Buffer.alloc(32))), 'MM_ERR_IDENTITY_KEY', 'a client never encrypts a CREATE to it')
  t.equal(codeOf(() => clientStart({ identityKey: huge.publicDer })), 'MM_ERR_IDENTITY_KEY', 'nor starts a handshake with it')

  // registration: the directory's POST answers 400 with the code, and lists nothing
  const app = Fastify({ logger: false })
  installErrorHandler(app)
  const directory = new Directory({ key: ed25519KeyPair(), privateNetwork: true }) // its relays are on loopback
  await app.register(directoryRoutes, { directory, probe: null })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/v1/directory/descriptors', payload: d })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error.code, 'MM_ERR_IDENTITY_KEY')
  t.match(res.json().error.message, /exponent 65537/)
  t.equal(directory.relayCount, 0, 'not listed')
  const ok = await app.inject({ method: 'POST', url: '/v1/directory/descriptors', payload: descriptor(fixedIdentity, 9002) })
  t.equal(ok.statusCode, 202, 'an honest RSA-2048 relay still registers')

  // every client and relay: verifyConsensus drops the relay entry, refuses a server entry
  const dir = ed25519KeyPair()
  const pin = directoryFingerprint(dir.publicKey)
  const honest = descriptor(fixedIdentity, 9003)
  const cbody = { v: 2 as const, method: 1, validAfter: NOW, validUntil: NOW + 3_600_000, relays: [d, honest], server: null, flags: {} }
  const c = verifyConsensus(JSON.parse(JSON.stringify(signConsensus(cbody, dir))), pin, NOW)
  t.same(c.relays.map((r) => r.fingerprint), [honest.fingerprint], 'a consensus listing it keeps only the honest relay')
  const asServer = signDescriptor({ ...(({ signature: _s, ...b }) => b)(d), role: 'server' }, huge.privateDer)
  t.equal(codeOf(() => verifyConsensus(signConsensus({ ...cbody, server: asServer }, dir), pin, NOW)), 'MM_ERR_IDENTITY_KEY', 'as the server entry it fails the consensus')
})

t.test('RSA-1024, RSA-4096 and e = 3 are refused; RSA-2048 and RSA-3072 with e = 65537 pass', async (t) => {
  const [, k1024, k4096, e3, k3072] = await keys
  for (const [name, id] of [['RSA-1024', k1024], ['RSA-4096', k4096], ['RSA-2048 e=3', e3]] as const) {
    const d = descriptor(id)
    t.ok(signatureVerifiesRaw(d), `${name}: validly signed`)
    t.equal(codeOf(() => verifyDescriptor(d, NOW)), 'MM_ERR_IDENTITY_KEY', `${name}: refused`)
    const dir = new Directory({ key: ed25519KeyPair(), now: () => NOW, privateNetwork: true })
    t.equal(codeOf(() => dir.accept(d)), 'MM_ERR_IDENTITY_KEY', `${name}: refused at registration`)
  }
  t.equal(codeOf(() => verifyDescriptor(descriptor(k3072), NOW)), 'NO_THROW', 'RSA-3072')
  t.equal(codeOf(() => verifyDescriptor(descriptor(fixedIdentity), NOW)), 'NO_THROW', 'RSA-2048')
  const ec = createPublicKey(createPrivateKey({ key: { kty: 'EC', crv: 'P-256', x: 'MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4', y: '4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM', d: '870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE' }, format: 'jwk' })).export({ type: 'spki', format: 'der' })
  t.equal(codeOf(() => rsaOaepEncrypt(ec, Buffer.alloc(32))), 'MM_ERR_KEY', 'not RSA at all')
})

t.test('the same descriptor verified again is a cache hit; the cache is bounded and still checks expiry', async (t) => {
  const [, , , , k3072] = await keys
  let full = 0
  const v = new DescriptorVerifier({ max: 2, verify: (d, now) => { full++; return verifyDescriptorUncached(d, now) } })
  const a = descriptor(fixedIdentity, 9001)
  const b = descriptor(k3072, 9002)
  const dir = ed25519KeyPair()
  const pin = directoryFingerprint(dir.publicKey)
  const doc = JSON.stringify(signConsensus({ v: 2, method: 1, validAfter: NOW, validUntil: NOW + 3_600_000, relays: [a, b], server: null, flags: {} }, dir))

  // a relay re-reads the consensus every 5 s: each read is a fresh JSON parse
  t.equal(verifyConsensus(JSON.parse(doc), pin, NOW, v).relays.length, 2)
  t.same([full, v.misses, v.hits], [2, 2, 0], 'first read: both verified in full')
  t.equal(verifyConsensus(JSON.parse(doc), pin, NOW + 5000, v).relays.length, 2)
  t.equal(verifyConsensus(JSON.parse(doc), pin, NOW + 10_000, v).relays.length, 2)
  t.same([full, v.misses, v.hits], [2, 2, 4], 'next reads: lookups only, no RSA verification')

  const altered = { ...a, port: 9009 }
  t.equal(codeOf(() => v.verify(altered, NOW)), 'MM_ERR_DESCRIPTOR', 'a changed field is another digest: verified in full, refused')
  t.equal(full, 3)
  t.equal(codeOf(() => v.verify(a, a.expires)), 'MM_ERR_DESCRIPTOR', 'a cached descriptor still expires')
  t.equal(v.hits, 5, 'that was a hit')

  v.verify(descriptor(fixedIdentity, 9005), NOW)
  t.equal(v.size, 2, 'bounded: the least recently used entry (b) is gone')
  v.verify(a, NOW)
  t.equal(full, 4, 'a, used recently, is still a hit')
  v.verify(b, NOW)
  t.equal(full, 5, 'b, evicted, is verified in full again')
})
