// The account lockout attack (issue 14): before, ten failed logins locked a name for
// everyone, the owner included, and one bad login every 30 s kept it locked. Now failed
// logins slow their name down (a delay before the check, doubling per failure, capped
// at 8 s; PROTOCOL §6.1) and the owner's correct password always signs in. The attacker
// uses circuits of its own (one per attempt, so no per-circuit budget hides the policy);
// the fake clock measures how long the throttle held each login.
import t from 'tap'
import { LOGIN_THROTTLE_DEFAULTS } from '../../../../src/roles/server/api/login-throttle.js'
import { PASSWORD, clockedStack, drive, gw, type ClockedStack } from './helpers.js'

const CAP = LOGIN_THROTTLE_DEFAULTS.maxDelayMs
let evil = 0
const login = (s: ClockedStack, username: string, password: string, circuit = `evil-${evil++}`) =>
  drive(s, gw(s.gateway, 'POST', '/v1/auth/login', { body: { username, password }, circuit }))

async function register (s: ClockedStack, username: string): Promise<void> {
  const res = await drive(s, gw(s.gateway, 'POST', '/v1/auth/register', { body: { username, password: PASSWORD }, circuit: `reg-${username}` }))
  if (res.value.status !== 201) throw new Error(`register ${username}: ${res.value.status}`)
}

t.test('the lockout attack fails: 25 bad logins for alice, and alice still signs in', async (t) => {
  const s = await clockedStack(t)
  await register(s, 'alice')
  await register(s, 'bob')

  const waits: number[] = []
  for (let i = 0; i < 25; i++) {
    const r = await login(s, 'alice', `wrong-password-${i}`)
    t.equal(r.value.status, 401, `bad login ${i + 1} is answered (never a lockout)`)
    t.equal(r.value.json.error.code, 'MM_ERR_BAD_CREDENTIALS')
    waits.push(r.waitedMs)
  }
  t.same(waits.slice(0, LOGIN_THROTTLE_DEFAULTS.freeFailures), [0, 0, 0, 0, 0], 'the first failures are not delayed (typos cost nothing)')
  t.ok(waits[LOGIN_THROTTLE_DEFAULTS.freeFailures] > 0, 'then every further attempt waits before its check')
  t.ok(waits.every((w, i) => i === 0 || w >= waits[i - 1]), `the delay grows with the failures (${waits.join(' ')})`)
  t.ok(Math.max(...waits) <= CAP + 50, `and never past the cap (${Math.max(...waits)} ms)`)
  t.ok(waits.at(-1)! >= CAP - 50, 'a sustained attack meets the cap: guessing alice is slowed to one check per circuit per cap')

  const owner = await login(s, 'alice', PASSWORD, 'alice-own-circuit')
  t.equal(owner.value.status, 200, 'the owner\'s correct password signs in during the attack')
  t.type(owner.value.json.token, 'string')
  t.ok(owner.waitedMs <= CAP + 50, `the owner waited at most the cap (${owner.waitedMs} ms of fake time)`)

  t.ok((await login(s, 'ALICE', 'wrong-password')).waitedMs > 0, 'names are throttled regardless of case')
  const bob = await login(s, 'bob', PASSWORD)
  t.same([bob.value.status, bob.waitedMs], [200, 0], 'another name is unaffected')
  for (let i = 0; i < 5; i++) {
    const again = await login(s, 'bob', PASSWORD)
    t.same([again.value.status, again.waitedMs], [200, 0], 'successful logins cost no throttle')
  }
})

t.test('an unknown name is throttled exactly like a known one (no enumeration by delay)', async (t) => {
  const s = await clockedStack(t)
  await register(s, 'carol')
  // one name after the other, so each sees only its own delays pass (the score decays with time)
  const known: number[] = []
  const unknown: number[] = []
  const answers = new Set<string>()
  for (let i = 0; i < 9; i++) {
    const a = await login(s, 'carol', 'wrong-password')
    t.equal(a.value.status, 401)
    answers.add(a.value.raw)
    known.push(a.waitedMs)
  }
  for (let i = 0; i < 9; i++) {
    const b = await login(s, 'nobody', 'wrong-password')
    t.equal(b.value.status, 401)
    answers.add(b.value.raw)
    unknown.push(b.waitedMs)
  }
  t.equal(answers.size, 1, 'the same answer for a wrong password and an unknown name')
  t.same(unknown, known, 'the same delays')
  t.ok(known.at(-1)! > 0, '(and the delays did start)')
})

t.test('attack and owner at once: 20 concurrent bad logins on 20 circuits, the owner\'s login among them', async (t) => {
  const s = await clockedStack(t)
  await register(s, 'dave')
  for (let i = 0; i < 10; i++) await login(s, 'dave', 'wrong-password') // the name is under attack already
  const attack = Array.from({ length: 20 }, (_, i) => gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'dave', password: `guess-${i}` }, circuit: `flood-${i}` }))
  const owner = gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'dave', password: PASSWORD }, circuit: 'dave-own' })
  const all = await drive(s, Promise.all([owner, ...attack]))
  const [mine, ...theirs] = all.value
  t.equal(mine.status, 200, 'the owner signs in')
  t.same([...new Set(theirs.map((r) => r.json.error.code))], ['MM_ERR_BAD_CREDENTIALS'], 'every guess was checked and refused as wrong, none answered otherwise')
  t.ok(all.waitedMs <= CAP + 50, 'all of them waited the delay at once, not one after another')
})
