// The scripting commands (`register`, `send`, `read`) as a bot would use them, on a
// live network (server + 3 relays, real processes on loopback): room messages and
// end-to-end DMs both ways, `read --follow` delivering live, exit codes and the
// one-line errors, passwords never from argv, and the remembered network settings.
import t from 'tap'
import { run, tmp } from '../../helpers/net.js'
import { startNetwork, type Network } from '../../helpers/network.js'
import { waitUntil } from '../../helpers/wait.js'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'

interface Result { code: number | null, stdout: string, stderr: string }

const PW = { alice: 'alice-password-1', bob: 'bob-password-22' }

async function mm (args: string[], password?: string, input?: string): Promise<Result> {
  const p = run(args, { env: password === undefined ? {} : { MARSHMELLO_PASSWORD: password }, input })
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}

const lines = (s: string): any[] => s.split('\n').filter(Boolean).map((l) => JSON.parse(l))

let net: Network
const home = { alice: tmp('mm-alice-'), bob: tmp('mm-bob-') }

t.before(async () => { net = await startNetwork({ relays: 3 }) })
t.teardown(async () => { await net?.stop() })

const as = (user: 'alice' | 'bob', args: string[], withNet = true) =>
  mm([...args, '--user', user, '--home', home[user], ...(withNet ? ['--devnet', net.dir] : [])], PW[user])

t.test('register both users, then room messages both ways', async (t) => {
  for (const u of ['alice', 'bob'] as const) {
    const r = await as(u, ['register'])
    t.equal(r.code, 0, `register ${u}: ${r.stderr}`)
    t.match(r.stdout, new RegExp(`registered ${u}`))
  }
  const before = Date.now()
  const s1 = await as('alice', ['send', '--room', 'lobby', '--json', 'hello from alice'])
  t.equal(s1.code, 0, s1.stderr)
  const sent = JSON.parse(s1.stdout)
  t.match(sent, { from: 'alice', room: 'lobby', text: 'hello from alice' })
  t.equal((await as('bob', ['send', '--room', 'lobby', 'hi alice, bob here'])).code, 0)

  for (const u of ['alice', 'bob'] as const) {
    const r = await as(u, ['read', '--room', 'lobby', '--json'])
    t.equal(r.code, 0, r.stderr)
    const msgs = lines(r.stdout)
    t.same(msgs.map((m) => [m.from, m.text]), [['alice', 'hello from alice'], ['bob', 'hi alice, bob here']], `${u} reads both, in order`)
    for (const m of msgs) {
      t.same(Object.keys(m).sort(), ['from', 'id', 'room', 'sentAt', 'text'])
      t.type(m.id, 'string')
      t.ok(m.id.length > 0)
      t.equal(m.room, 'lobby')
      t.ok(m.sentAt >= before - 5000 && m.sentAt <= Date.now() + 5000, 'sentAt is a timestamp in ms')
    }
    t.equal(msgs[0].id, sent.id, 'the id send printed is the id read returns')
  }
})

t.test('DMs both ways are end-to-end verified', async (t) => {
  t.equal((await as('alice', ['send', '--to', 'bob', 'secret for bob'])).code, 0)
  t.equal((await as('bob', ['send', '--to', 'alice', 'secret for alice'])).code, 0)
  for (const u of ['alice', 'bob'] as const) {
    const r = await as(u, ['read', '--dms', '--json'])
    t.equal(r.code, 0, r.stderr)
    const msgs = lines(r.stdout)
    t.same(msgs.map((m) => [m.from, m.to, m.text, m.verified]), [
      ['alice', 'bob', 'secret for bob', true],
      ['bob', 'alice', 'secret for alice', true],
    ], `${u} sees both DMs, decrypted and verified`)
    for (const m of msgs) t.notOk('warning' in m, 'no warning')
  }
})

t.test('read --follow prints a later message live', async (t) => {
  const follow = run(['read', '--room', 'follow-room', '--follow', '--json', '--user', 'bob', '--home', home.bob, '--devnet', net.dir], { env: { MARSHMELLO_PASSWORD: PW.bob } })
  t.teardown(() => follow.kill('SIGKILL'))
  t.equal((await as('alice', ['send', '--room', 'follow-room', 'first'])).code, 0)
  await follow.waitFor(/"text":"first"/, 20_000)
  // the follower's long-poll is parked at the server (its operator counter); a message sent now must arrive without a restart
  const parked = async () => Number((await fetchOperatorJson(`${net.server.url}/metrics`, readOperatorCredentials(net.server.dataDir)))?.longPollsWaiting)
  t.ok(await waitUntil(async () => await parked() >= 1, { timeoutMs: 15_000, everyMs: 50 }), 'the follower waits in a long-poll')
  const t0 = Date.now()
  t.equal((await as('alice', ['send', '--room', 'follow-room', 'live message'])).code, 0)
  await follow.waitFor(/"text":"live message"/, 15_000)
  t.ok(Date.now() - t0 < 15_000, 'delivered by the long-poll, not after its 25 s timeout')
  const got = lines(follow.stdout())
  t.same(got.map((m) => m.text), ['first', 'live message'], 'each message once, in order')
  t.equal(await follow.kill('SIGINT'), 0, 'Ctrl-C ends --follow with exit code 0')
})

t.test('exit codes and one-line errors', async (t) => {
  const wrong = await mm(['send', '--room', 'lobby', '--user', 'alice', '--home', home.alice, '--devnet', net.dir, 'x'], 'not-the-password')
  t.not(wrong.code, 0, 'wrong password fails')
  t.equal(wrong.stderr.trim().split('\n').length, 1, `one line on stderr: ${wrong.stderr}`)
  t.equal(wrong.stdout, '')

  const nobody = await as('alice', ['send', '--to', 'nobody-here', 'hello?'])
  t.not(nobody.code, 0, 'unknown recipient fails')
  t.equal(nobody.stderr.trim().split('\n').length, 1, nobody.stderr)

  const fresh = tmp('mm-nonet-')
  const nonet = await mm(['read', '--room', 'lobby', '--user', 'alice', '--home', fresh], PW.alice)
  t.not(nonet.code, 0, 'no network configured fails')
  t.match(nonet.stderr, /--devnet/)
  t.match(nonet.stderr, /--relay/)
  t.match(nonet.stderr, /MM_ERR_CONFIG/)

  const argvPw = await mm(['send', '--room', 'lobby', '--user', 'alice', '--home', home.alice, '--devnet', net.dir, '--password', PW.alice, 'x'])
  t.not(argvPw.code, 0, '--password in argv is refused')
  t.match(argvPw.stderr, /--password is not accepted/)
  const argvPw2 = await mm(['send', '--room', 'lobby', '--user', 'alice', '--home', home.alice, '--devnet', net.dir, `--password=${PW.alice}`, 'y'])
  t.not(argvPw2.code, 0, '--password=… in argv is refused too')

  // neither attempt stored anything
  const r = await as('bob', ['read', '--room', 'lobby', '--json'])
  t.notOk(lines(r.stdout).some((m) => m.text === 'x' || m.text === 'y'), 'refused sends stored nothing')
})

t.test('--password-stdin', async (t) => {
  const r = await mm(['send', '--room', 'lobby', '--user', 'alice', '--home', home.alice, '--devnet', net.dir, '--password-stdin', 'via stdin'], undefined, PW.alice + '\n')
  t.equal(r.code, 0, r.stderr)
})

t.test('network settings are remembered', async (t) => {
  const r = await as('alice', ['send', '--room', 'lobby', 'no devnet flag'], false)
  t.equal(r.code, 0, r.stderr)
  const b = await as('bob', ['read', '--room', 'lobby', '--json'], false)
  t.equal(b.code, 0, b.stderr)
  t.ok(lines(b.stdout).some((m) => m.text === 'no devnet flag'))
  // with --relay and --directory-key the relay is remembered in place of the devnet
  const h = tmp('mm-relayflag-')
  const reg = await mm(['register', '--user', 'carol', '--home', h, '--relay', net.relays[0].url, '--directory-key', net.directoryKey], 'carol-password-3')
  t.equal(reg.code, 0, reg.stderr)
  const again = await mm(['read', '--room', 'lobby', '--json', '--user', 'carol', '--home', h], 'carol-password-3')
  t.equal(again.code, 0, again.stderr)
  t.ok(lines(again.stdout).some((m) => m.text === 'no devnet flag'))
})
