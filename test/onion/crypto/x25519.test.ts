// X25519 on raw 32-byte keys: the RFC 7748 §6.1 vector, the one-key-object helper the
// hops use agrees with the separate functions, and low-order peer keys are refused.

import t from 'tap'
import { x25519, x25519PublicAndShared, x25519PublicFromPrivate } from '../../../src/onion/crypto/primitives.js'

const hex = (s: string) => Buffer.from(s, 'hex')
const alicePriv = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
const alicePub = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
const bobPriv = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb')
const bobPub = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')

t.test('RFC 7748 vector', async t => {
  t.same(x25519PublicFromPrivate(alicePriv), alicePub)
  t.same(x25519PublicFromPrivate(bobPriv), bobPub)
  t.same(x25519(alicePriv, bobPub), shared)
  t.same(x25519(bobPriv, alicePub), shared)
})

t.test('x25519PublicAndShared = public key and shared secret from one key', async t => {
  t.same(x25519PublicAndShared(bobPriv, alicePub), { publicKey: bobPub, shared })
})

t.test('a low-order peer key is refused', async t => {
  t.throws(() => x25519PublicAndShared(bobPriv, Buffer.alloc(32)), { code: 'MM_ERR_HANDSHAKE' })
  t.throws(() => x25519(bobPriv, Buffer.alloc(32)), { code: 'MM_ERR_HANDSHAKE' })
  t.throws(() => x25519PublicAndShared(bobPriv, Buffer.alloc(31)), { code: 'MM_ERR_LENGTH' })
})
