// The scrypt flood (issue 14): every register and every login for an unknown name costs
// one scrypt (~96 ms), and before, nothing bounded how many ran. Now one gate runs a
// few at once and queues a few more (PROTOCOL §6.1); beyond, 503 MM_ERR_PASSWORD_BUSY
// with a message that says why, at once. Each attacker request comes on its own circuit,
// so only the gate stands in the way; an honest login and register succeed afterwards.
import t from 'tap'
import { PASSWORD, clockedStack, gw } from './helpers.js'

const GATE = { concurrency: 2, maxQueued: 4 }

t.test('60 concurrent registers and unknown-name logins: bounded work, 503 beyond, honest traffic after', async (t) => {
  const s = await clockedStack(t, { passwordWork: GATE })
  let maxRunning = 0
  let maxQueued = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const st = s.services.stats()
      maxRunning = Math.max(maxRunning, st.passwordChecksRunning)
      maxQueued = Math.max(maxQueued, st.passwordChecksQueued)
      await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  const before = s.services.stats()
  const flood = [
    ...Array.from({ length: 40 }, (_, i) => gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: `ghost${i}`, password: 'whatever-1' }, circuit: `login-${i}` })),
    ...Array.from({ length: 20 }, (_, i) => gw(s.gateway, 'POST', '/v1/auth/register', { body: { username: `spam${i}`, password: PASSWORD }, circuit: `reg-${i}` })),
  ]
  const answers = await Promise.all(flood)
  sampling = false
  await sampler
  const after = s.services.stats()

  const busy = answers.filter((r) => r.status === 503)
  const served = answers.filter((r) => r.status !== 503)
  t.ok(maxRunning <= GATE.concurrency, `never more than ${GATE.concurrency} scrypt at once (saw ${maxRunning})`)
  t.ok(maxQueued <= GATE.maxQueued, `never more than ${GATE.maxQueued} waiting (saw ${maxQueued})`)
  t.ok(busy.length >= 60 - GATE.concurrency - GATE.maxQueued - 10, `most of the flood was refused at once (${busy.length} of 60)`)
  t.same([...new Set(busy.map((r) => r.json.error.code))], ['MM_ERR_PASSWORD_BUSY'], 'refused with the code')
  t.not(busy[0].json.error.message, 'service unavailable, try again', 'and a message of its own, not the masked 5xx one')
  t.match(busy[0].json.error.message, /password/, 'which says what is busy')
  t.ok(served.every((r) => r.status === 401 || r.status === 201), 'what was let in was answered normally')
  t.equal(after.passwordChecksRefused - before.passwordChecksRefused, busy.length, 'the gate counted its refusals')
  t.equal(after.passwordChecksRunning + after.passwordChecksQueued, 0, 'and is empty again')

  // an unknown name costs exactly one scrypt, like a known one, and nothing is unmetered
  const ran = (await Promise.all([0, 1, 2].map((i) => gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: `nobody${i}`, password: 'whatever-1' }, circuit: `after-${i}` }))))
  t.same(ran.map((r) => r.status), [401, 401, 401])

  const reg = await gw(s.gateway, 'POST', '/v1/auth/register', { body: { username: 'honest', password: PASSWORD }, circuit: 'honest' })
  t.equal(reg.status, 201, 'an honest register succeeds after the flood')
  const login = await gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'honest', password: PASSWORD }, circuit: 'honest' })
  t.equal(login.status, 200, 'and so does its login')
})

t.test('one scrypt per register and per login, known name or not', async (t) => {
  const s = await clockedStack(t)
  const done = () => s.services.stats().passwordChecksDone
  let n = done()
  t.equal((await gw(s.gateway, 'POST', '/v1/auth/register', { body: { username: 'erin', password: PASSWORD }, circuit: 'a' })).status, 201)
  t.equal(done() - n, 1, 'a register: one scrypt'); n = done()
  t.equal((await gw(s.gateway, 'POST', '/v1/auth/register', { body: { username: 'erin', password: PASSWORD }, circuit: 'b' })).status, 409)
  t.equal(done() - n, 1, 'a register of a taken name: the same one scrypt'); n = done()
  t.equal((await gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'erin', password: 'wrong-one' }, circuit: 'c' })).status, 401)
  t.equal(done() - n, 1, 'a wrong password: one scrypt'); n = done()
  t.equal((await gw(s.gateway, 'POST', '/v1/auth/login', { body: { username: 'nobody', password: 'wrong-one' }, circuit: 'd' })).status, 401)
  t.equal(done() - n, 1, 'an unknown name: one scrypt, through the same gate')
})
