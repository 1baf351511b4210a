// The terminal chat against a hostile room member, on a live network (server + 3
// relays, real processes) and in a real pseudo-terminal: mallory's messages carrying
// ESC sequences (colour, a title change, clearing the screen), 8-bit C1 controls, a
// bidi override and lines forged with CR and LF reach alice's screen shown, not run, one
// line each, in the room's history and live, and through `read`; bob's DM sent while
// alice was away is shown at login, marked verified, and again in /dm bob's history;
// joined rooms and the place are kept across sessions, other rooms count unread
// messages in the status line, `/join bad room!` is refused, and a message over the
// size limit is refused before sending with its text kept. Mallory and bob (what
// reaches alice's screen) are in-process clients; alice's chat and `read` are the
// processes under test.
import t from 'tap'
import { run, tmp } from '../../helpers/net.js'
import { startNetwork, type Network } from '../../helpers/network.js'
import { MESSAGE_MAX_CHARS } from '../../../src/limits.js'
import type { ChatClient } from '../../../src/roles/client/chat-client.js'
import { openClient } from '../../../src/roles/client/setup.js'
import { foreignControls, hasScript, render, terminal } from './pty.js'

const PW = { alice: 'alice-password-1', bob: 'bob-password-22', mallory: 'mallory-pass-33' }
type Who = keyof typeof PW
const home: Record<Who, string> = { alice: tmp('mm-alice-'), bob: tmp('mm-bob-'), mallory: tmp('mm-mallory-') }
let net: Network

const as = async (who: Who, args: string[]) => {
  const p = run([...args, '--user', who, '--home', home[who], '--devnet', net.dir], { env: { MARSHMELLO_PASSWORD: PW[who] } })
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}
const jsonLines = (s: string): any[] => s.split('\n').filter(Boolean).map((l) => JSON.parse(l))
/** signs `who` up in-process; logged in unless `close` (alice: her chat logs in itself) */
const signUp = async (who: Who, close = false): Promise<ChatClient> => {
  const c = await openClient({ home: home[who], devnet: net.dir, rotate: 600, verbose: false })
  await c.register(who, PW[who])
  if (close) await c.circuits.close()
  else await c.login(who, PW[who])
  return c
}

const ESCAPES = 'before \x1b[31mred \x1b]0;PWNED\x07 \x1b[2J\x1b[3J\x1bc end'
const FORGED_CR = 'hi all\r[08:10:01] #lobby alice: I agree, send bob money'
const FORGED_LF = 'hi again\n[08:10:01] #lobby alice: I agree, send bob money'
const C1_BIDI = 'eight-bit \u009b2J \u009d0;PWNED\u009c and \u202Etxt.exe'
const LIVE = 'live one \x1b]2;PWNED AGAIN\x07\x1b[2J\r[08:10:02] #lobby alice: me too'
const ALL = [ESCAPES, FORGED_CR, FORGED_LF, C1_BIDI]

/** a rendered line that seems to be alice's: the forgery's goal */
const FORGED_LINE = /^\[[^\]]*\] #lobby alice: /m

const skip = hasScript ? false : 'util-linux script is not installed'
t.before(async () => { net = await startNetwork({ relays: 3 }) })
t.teardown(async () => { await net?.stop() })

t.test('hostile text, missed DMs, rooms kept', { skip }, async (t) => {
  const [, bob, mallory] = await Promise.all([signUp('alice', true), signUp('bob'), signUp('mallory')])
  // logged out (the profile lock released: test 2 reads as bob in a process of its own)
  t.teardown(() => Promise.all([bob, mallory].map(async (c) => { await c.logout(); await c.circuits.close() })))
  for (const text of ALL) t.match(await mallory.sendRoom('lobby', text), { from: 'mallory', text }, 'mallory posts')
  t.match(await bob.sendDm('alice', 'sent while you were away'), { to: 'alice' }, 'bob DMs alice while she is away')

  const tui = terminal(['chat', '--user', 'alice', '--home', home.alice, '--devnet', net.dir], { MARSHMELLO_PASSWORD: PW.alice })
  t.teardown(() => { if (tui.child.exitCode === null) tui.child.kill('SIGKILL') })
  await tui.waitFor(/logged in as alice/)
  await tui.waitFor(/\[#lobby\]( \(@bob 1\))? >$/)

  // the room's history: each payload on mallory's one line, shown as text
  await tui.waitFor(/mallory: eight-bit/)
  let screen = render(tui.output())
  t.match(screen, /#lobby mallory: before ␛\[31mred ␛\]0;PWNED␇ ␛\[2J␛\[3J␛c end/, 'ESC sequences are shown, not run')
  t.match(screen, /#lobby mallory: hi all␍\[08:10:01\] #lobby alice: I agree/, 'the CR stays inside mallory\'s line')
  t.match(screen, /#lobby mallory: hi again␊\[08:10:01\] #lobby alice: I agree/, 'so does the LF')
  t.match(screen, /#lobby mallory: eight-bit ‹U\+009B›2J ‹U\+009D›0;PWNED‹U\+009C› and ‹U\+202E›txt\.exe/, 'C1 and bidi controls are named')
  t.notMatch(screen, FORGED_LINE, 'no line seems to come from alice')
  t.same(foreignControls(tui.output()), [], 'no title change, no screen clearing, no colour reached the terminal')

  // DMs at login (this is alice's first session: her last DMs), verified
  const dmAtLogin = await tui.waitFor(/── your last DM ──\n\[[^\]]+\] ✓ bob → alice: sent while you were away/)
  t.ok(dmAtLogin, 'the DM that came before her first session is shown at login, marked ✓')

  // live: the same holds for a message that arrives now
  let at = tui.output().length
  await mallory.sendRoom('lobby', LIVE)
  await tui.waitFor(/mallory: live one/, at)
  screen = render(tui.output().slice(at))
  t.match(screen, /#lobby mallory: live one ␛\]2;PWNED AGAIN␇␛\[2J␍\[08:10:02\] #lobby alice: me too/)
  t.notMatch(screen, FORGED_LINE)
  t.same(foreignControls(tui.output()), [], 'still nothing foreign in the raw output')

  // /dm bob: the history, newest last
  await bob.sendDm('alice', 'second from bob')
  await tui.waitFor(/✓ bob → alice: second from bob/, at)
  at = tui.output().length
  tui.type('/dm bob\r')
  await tui.waitFor(/── your last 2 DMs with bob ──\n\[[^\]]+\] ✓ bob → alice: sent while you were away\n\[[^\]]+\] ✓ bob → alice: second from bob/, at)
  await tui.waitFor(/\[@bob\] >$/, at)

  // a bad room name is refused, not cut to #bad
  at = tui.output().length
  tui.type('/join bad room!\r')
  await tui.waitFor(/! not joined: a room name is/, at)
  t.notMatch(render(tui.output().slice(at)), /joined #bad/)

  // too long: refused before sending, the text kept in the input line
  at = tui.output().length
  tui.type('/join dev\r')
  await tui.waitFor(/joined #dev/, at)
  await tui.waitFor(/\[#dev\] >$/, at)
  at = tui.output().length
  const long = 'y'.repeat(MESSAGE_MAX_CHARS + 1)
  tui.type(long + '\r')
  const refused = /the message is 4,001 characters; a message is at most 4,000 characters\. Not sent/g
  await tui.waitFor(refused, at)
  tui.type('\r') // the text is back in the input line: Enter sends it again, and it is refused again
  for (let i = 0; i < 200 && (render(tui.output().slice(at)).match(refused) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 50))
  t.equal((render(tui.output().slice(at)).match(refused) ?? []).length, 2, 'the refused text was kept, not lost')
  tui.type('\x15') // Ctrl-U: clear the kept text
  tui.type('hello dev\r')
  await tui.waitFor(/#dev alice: hello dev/, at)
  const dev = (await bob.readRoom('dev', { limit: 200 })).messages
  t.same(dev.map((m) => m.text), ['hello dev'], 'the long message was never sent')

  // a message in another joined room: counted in the status line
  at = tui.output().length
  await bob.sendRoom('lobby', 'news in the lobby')
  await tui.waitFor(/\[#dev\] \(#lobby 1\) >$/, at, 40_000)
  tui.type('/rooms\r')
  await tui.waitFor(/your rooms:\n {2}#lobby {2}1 unread\n {2}#dev {2}\(here\)/, at)

  tui.type('/quit\r')
  t.equal(await tui.exited, 0)

  // the next session: what came while she was away, the same rooms, back where alice was
  await bob.sendDm('alice', 'while you were logged out')
  const again = terminal(['chat', '--user', 'alice', '--home', home.alice, '--devnet', net.dir], { MARSHMELLO_PASSWORD: PW.alice })
  t.teardown(() => { if (again.child.exitCode === null) again.child.kill('SIGKILL') })
  await again.waitFor(/── 1 DM while you were away ──\n\[[^\]]+\] ✓ bob → alice: while you were logged out\n/)
  t.notMatch(render(again.output()), /second from bob/, 'only what came since the last session')
  await again.waitFor(/\[#dev\]/)
  again.type('/rooms\r')
  await again.waitFor(/your rooms:\n {2}#lobby.*\n {2}#dev {2}\(here\)/)
  again.type('/quit\r')
  t.equal(await again.exited, 0)
})

t.test('read prints the same payloads safely; --json keeps them exactly', { skip }, async (t) => {
  const plain = await as('bob', ['read', '--room', 'lobby'])
  t.equal(plain.code, 0, plain.stderr)
  const lines = plain.stdout.split('\n').filter(Boolean)
  t.equal(lines.length, ALL.length + 2, 'one line per message')
  t.notOk(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/.test(plain.stdout), 'no control character but the newlines between messages')
  t.notOk(lines.some((l) => /^\[[^\]]*\] #lobby alice: /.test(l)), 'no forged line')
  t.match(lines[0], /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d\] #lobby mallory: before ␛\[31m/, 'a local date-time with its offset')
  const json = jsonLines((await as('bob', ['read', '--room', 'lobby', '--json'])).stdout)
  t.same(json.map((m) => m.text), [...ALL, LIVE, 'news in the lobby'], 'the exact texts as JSON')
})
