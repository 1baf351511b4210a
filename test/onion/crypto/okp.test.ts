// X25519/Ed25519 key objects from raw bytes (src/onion/crypto/okp.ts): RFC 7748 §6.1
// and RFC 8032 §7.1 vectors through the one copy of the DER headers, and agreement,
// signing and the raw round trips agreeing with primitives.ts.
import t from 'tap'
import { ed25519SignKey, ed25519VerifyKey, okpPrivateKey, okpPublicKey, okpRawPrivate, okpRawPublic, x25519Agree } from '../../../src/onion/crypto/okp.js'
import { ed25519PublicFromPrivate, ed25519Sign, x25519 } from '../../../src/onion/crypto/primitives.js'

const hex = (s: string) => Buffer.from(s, 'hex')
const ALICE = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
const ALICE_PUB = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
const BOB_PUB = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
const ED_SK = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
const ED_PK = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
const ED_SIG_EMPTY = 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'

t.test('X25519: RFC 7748 §6.1 through key objects', async t => {
  const priv = okpPrivateKey('X25519', ALICE)
  t.same(okpRawPublic(priv), ALICE_PUB)
  t.same(okpRawPrivate(priv), ALICE)
  t.equal(x25519Agree(priv, okpPublicKey('X25519', BOB_PUB)).toString('hex'), SHARED)
  t.equal(x25519(ALICE, BOB_PUB).toString('hex'), SHARED, 'the same as the primitives')
  t.throws(() => x25519Agree(priv, okpPublicKey('X25519', Buffer.alloc(32))), 'a low-order key is refused')
})

t.test('Ed25519: RFC 8032 §7.1 test 1 through key objects', async t => {
  const priv = okpPrivateKey('Ed25519', ED_SK)
  t.equal(okpRawPublic(priv).toString('hex'), ED_PK)
  t.equal(ed25519PublicFromPrivate(ED_SK).toString('hex'), ED_PK, 'the same as the primitives')
  const sig = ed25519SignKey(priv, Buffer.alloc(0))
  t.equal(sig.toString('hex'), ED_SIG_EMPTY)
  t.same(sig, ed25519Sign(ED_SK, Buffer.alloc(0)))
  const pub = okpPublicKey('Ed25519', hex(ED_PK))
  t.equal(ed25519VerifyKey(pub, Buffer.alloc(0), sig), true)
  t.equal(ed25519VerifyKey(pub, Buffer.from('x'), sig), false)
})

t.test('raw extraction refuses what is not an OKP key', async t => {
  t.throws(() => okpRawPrivate(okpPublicKey('X25519', ALICE_PUB)))
})
