// AES-256-GCM as the layers use it: a known-answer vector (NIST SP 800-38D test case
// 16, the 256-bit key with AAD), sealing into a caller's buffer, and refusals.

import t from 'tap'
import { aesGcmOpen, aesGcmSeal, aesGcmSealInto } from '../../../src/onion/crypto/primitives.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const key = hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308')
const iv = hex('cafebabefacedbaddecaf888')
const pt = hex(`d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
  1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39`)
const aad = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2')
const ct = hex(`522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
  8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662`)
const tag = hex('76fc6ece0f4e1768cddf8853bb2d551b')

t.test('the NIST vector: seal gives ciphertext ‖ tag, open gives the plaintext back', async t => {
  t.same(aesGcmSeal(key, iv, pt, aad), Buffer.concat([ct, tag]))
  t.same(aesGcmOpen(key, iv, Buffer.concat([ct, tag]), aad), pt)
})

t.test('sealInto writes exactly ciphertext ‖ tag at the offset and nothing else', async t => {
  const out = Buffer.alloc(7 + pt.length + 16 + 5, 0xaa)
  aesGcmSealInto(key, iv, pt, aad, out, 7)
  t.same(out.subarray(7, 7 + pt.length + 16), Buffer.concat([ct, tag]))
  t.ok(out.subarray(0, 7).every(b => b === 0xaa), 'bytes before the offset untouched')
  t.ok(out.subarray(7 + pt.length + 16).every(b => b === 0xaa), 'bytes after the tag untouched')
  t.throws(() => aesGcmSealInto(key, iv, pt, aad, Buffer.alloc(pt.length + 15), 0), { code: 'MM_ERR_LENGTH' }, 'an output one byte short is refused')
})

t.test('open refuses a flipped bit in ciphertext, tag or AAD', async t => {
  const sealed = Buffer.concat([ct, tag])
  for (const i of [0, ct.length - 1, ct.length, sealed.length - 1]) {
    const bad = Buffer.from(sealed)
    bad[i] ^= 1
    t.equal(aesGcmOpen(key, iv, bad, aad), null, `bit flipped at byte ${i}`)
  }
  const badAad = Buffer.from(aad)
  badAad[0] ^= 1
  t.equal(aesGcmOpen(key, iv, sealed, badAad), null, 'AAD changed')
})
