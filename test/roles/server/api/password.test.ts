import t from 'tap'
import { hashPassword, verifyPassword } from '../../../../src/roles/server/api/password.js'

t.test('hash format and verification', async t => {
  const h = await hashPassword('hunter2hunter2')
  const parts = h.split('$')
  t.equal(parts.length, 6)
  t.same(parts.slice(0, 4), ['scrypt', String(2 ** 15), '8', '1'])
  t.equal(Buffer.from(parts[4], 'base64').length, 16, '16-byte salt')
  t.equal(Buffer.from(parts[5], 'base64').length, 32)
  t.equal(await verifyPassword('hunter2hunter2', h), true)
  t.equal(await verifyPassword('hunter2hunter3', h), false)
  t.not(await hashPassword('hunter2hunter2'), h, 'fresh salt each time')
})

t.test('cheap parameters round-trip and unreadable hashes are false, not errors', async t => {
  const h = await hashPassword('pässwörd', { N: 1024, r: 8, p: 1 })
  t.match(h, /^scrypt\$1024\$8\$1\$/)
  t.equal(await verifyPassword('pa\u0308sswo\u0308rd', h), true, 'NFC-normalised before hashing')
  for (const bad of ['', 'bcrypt$x', 'scrypt$1000$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==', 'scrypt$1048576000$8$1$a$b', h.replace('$8$', '$99$')]) {
    t.equal(await verifyPassword('pässwörd', bad), false, JSON.stringify(bad))
  }
})
