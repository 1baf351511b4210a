// scrypt (src/onion/crypto/kdf.ts) against RFC 7914 §12, with the NFC rule; the
// randomness helpers (random.ts) for range and shape.
import t from 'tap'
import { scryptKey } from '../../../src/onion/crypto/kdf.js'
import { randomBase64url, randomBytes, randomHex, randomInt } from '../../../src/onion/crypto/random.js'

t.test('scryptKey: RFC 7914 §12 vector', async t => {
  const key = await scryptKey('password', Buffer.from('NaCl'), 64, { N: 1024, r: 8, p: 16 })
  t.equal(key.toString('hex'), 'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640')
})

t.test('scryptKey normalises the password to NFC', async t => {
  const p = { N: 16, r: 1, p: 1 }
  const salt = Buffer.from('salt')
  const composed = await scryptKey('caf\u00e9', salt, 32, p)
  const decomposed = await scryptKey('cafe\u0301', salt, 32, p)
  t.same(composed, decomposed)
  t.notSame(composed, await scryptKey('cafe', salt, 32, p))
})

t.test('scryptKey rejects parameters OpenSSL refuses', async t => {
  await t.rejects(scryptKey('x', Buffer.from('s'), 32, { N: 3, r: 1, p: 1 }))
})

t.test('random helpers', async t => {
  t.equal(randomBytes(7).length, 7)
  t.match(randomHex(6), /^[0-9a-f]{12}$/)
  t.match(randomBase64url(12), /^[A-Za-z0-9_-]{16}$/)
  const seen = new Set<number>()
  for (let i = 0; i < 2000; i++) {
    const a = randomInt(3)
    const b = randomInt(1, 0xffffffff)
    if (a < 0 || a >= 3 || b < 1 || b >= 0xffffffff || !Number.isInteger(a) || !Number.isInteger(b)) t.fail(`out of range: ${a} ${b}`)
    seen.add(a)
  }
  t.same([...seen].sort(), [0, 1, 2], 'every value of a small range comes up')
})
