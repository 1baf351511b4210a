// Password guessing is limited per name (the server never learns addresses to limit
// by): after 10 failed logins a name answers 429 even to the right password, an
// unknown name is limited alike (no enumeration), and other names are unaffected.
import t from 'tap'
import { call, signUp, stack, PASSWORD } from './helpers.js'

t.test('failed logins are limited per name', async (t) => {
  const { gateway } = await stack(t)
  await signUp(gateway, 'alice')
  await signUp(gateway, 'bob')
  const login = (username: string, password: string) => call(gateway, 'POST', '/v1/auth/login', { body: { username, password } })
  for (let i = 0; i < 10; i++) t.equal((await login('alice', 'wrong-password')).status, 401)
  const limited = await login('alice', PASSWORD)
  t.equal(limited.status, 429, 'the 11th attempt is refused, even with the right password')
  t.equal(limited.json.error.code, 'MM_ERR_RATE')
  t.equal((await login('ALICE', 'wrong-password')).status, 429, 'names are limited regardless of case')
  t.equal((await login('bob', PASSWORD)).status, 200, 'another name is unaffected')
  for (let i = 0; i < 10; i++) await login('nobody', 'wrong-password')
  t.equal((await login('nobody', 'wrong-password')).status, 429, 'an unknown name is limited like a known one')
  for (let i = 0; i < 20; i++) t.equal((await login('bob', PASSWORD)).status, 200, 'successful logins cost nothing')
})
