// `marshmello chat` driven in a real pseudo-terminal (util-linux `script`) on a live
// network (server + 3 relays): alice logs in at the prompts (the password is never
// echoed), chats in the lobby with bob (who uses the scripting commands), gets his
// message live above her prompt, DMs him end-to-end, and uses /whois, /circuit, /rooms
// (the rooms on the server), /older (history before the newest page, from the server) and
// /quit. The screen she saw is saved to docs/terminal-transcript.txt when
// MM_UPDATE_TRANSCRIPT=1.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, run, tmp } from '../../helpers/net.js'
import { hasScript, render, terminal } from './pty.js'
import { startNetwork, type Network } from '../../helpers/network.js'
import { openClient } from '../../../src/roles/client/setup.js'

const PW = { alice: 'Zq7-hidden-pass', bob: 'bob-password-22' }
let net: Network
const home = { alice: tmp('mm-alice-'), bob: tmp('mm-bob-') }

const bob = async (args: string[]) => {
  const p = run([...args, '--user', 'bob', '--home', home.bob, '--devnet', net.dir], { env: { MARSHMELLO_PASSWORD: PW.bob } })
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}
const jsonLines = (s: string): any[] => s.split('\n').filter(Boolean).map((l) => JSON.parse(l))

t.test('terminal chat', { skip: hasScript ? false : 'util-linux script is not installed' }, async (t) => {
  net = await startNetwork({ relays: 3 })
  t.teardown(() => net.stop())
  for (const u of ['alice', 'bob'] as const) {
    const p = run(['register', '--user', u, '--home', home[u], '--devnet', net.dir], { env: { MARSHMELLO_PASSWORD: PW[u] } })
    t.equal(await p.exited, 0, `register ${u}: ${p.stderr()}`)
  }

  // no MARSHMELLO_PASSWORD: the TUI must ask for it
  const tui = terminal(['chat', '--home', home.alice], { MARSHMELLO_PASSWORD: '' })
  t.teardown(() => { if (tui.child.exitCode === null) tui.child.kill('SIGKILL') })

  await tui.waitFor(/username:$/)
  tui.type('alice\r')
  await tui.waitFor(/password:$/)
  const pwAt = tui.output().length
  tui.type(PW.alice + '\r')
  await tui.waitFor(/logged in as alice; circuit: .*\(\/help for commands\)/)
  await tui.waitFor(/\[#lobby\] >$/)
  t.notOk(tui.output().includes(PW.alice), 'the password never reaches the terminal')
  t.notOk(tui.output().slice(pwAt).includes(PW.alice.slice(0, 5)), 'not even part of it')

  // alice → lobby, read by bob's script
  tui.type('hello from the terminal\r')
  let r = await bob(['read', '--room', 'lobby', '--json'])
  for (let i = 0; i < 20 && !r.stdout.includes('hello from the terminal'); i++) {
    await new Promise((res) => setTimeout(res, 250))
    r = await bob(['read', '--room', 'lobby', '--json'])
  }
  t.same(jsonLines(r.stdout).map((m) => [m.from, m.text]), [['alice', 'hello from the terminal']], 'bob reads alice\'s message once')

  // bob → lobby, shown live in alice's terminal
  let at = tui.output().length
  t.equal((await bob(['send', '--room', 'lobby', 'hi alice, from a script'])).code, 0)
  await tui.waitFor(/#lobby bob: hi alice, from a script/, at)
  t.match(render(tui.output()), /#lobby bob: hi alice, from a script\n\[#lobby\] >$/, 'printed above a redrawn prompt')

  // a DM: pinned on first sight, end-to-end, verified on bob's side
  at = tui.output().length
  tui.type('/dm bob\r')
  await tui.waitFor(/DMs with bob are end-to-end encrypted; their key fingerprint: [0-9a-f]{64} \(first seen, now pinned\)/, at)
  await tui.waitFor(/\[@bob\] >$/, at)
  tui.type('just between us\r')
  await tui.waitFor(/alice → bob: just between us/, at)
  r = await bob(['read', '--dms', '--json'])
  t.same(jsonLines(r.stdout).map((m) => [m.from, m.to, m.text, m.verified]), [['alice', 'bob', 'just between us', true]], 'bob reads the DM, verified')

  // bob answers by DM: it appears live, verified (no warning sign)
  at = tui.output().length
  t.equal((await bob(['send', '--to', 'alice', 'got it'])).code, 0)
  await tui.waitFor(/bob → alice: got it/, at)
  t.notMatch(tui.output().slice(at), /⚠/)
  const shown = render(tui.output()).split('\n').filter((l) => l.includes('alice → bob: just between us'))
  t.equal(shown.length, 1, 'alice\'s own DM is shown once')

  at = tui.output().length
  tui.type('/whois bob\r')
  const w = await tui.waitFor(/bob: ([0-9a-f]+)\s+\(matches the pinned key\)/, at)
  t.match(w[1], /^[0-9a-f]{64}$/, '/whois shows a 64-hex fingerprint')

  at = tui.output().length
  tui.type('/circuit\r')
  await tui.waitFor(/→ server /, at)
  const hops = render(tui.output().slice(at)).split('\n').filter((l) => /^\s+→ /.test(l))
  t.equal(hops.length, 4, '/circuit shows 4 hops (3 relays and the server)')
  t.match(hops[3], /server \S+ [0-9a-f]{16}… at 127\.0\.0\.1:\d+/)
  for (const [i, h] of hops.slice(0, 3).entries()) t.match(h, new RegExp(`relay ${i + 1} relay\\d [0-9a-f]{16}… at 127\\.0\\.0\\.1\\d:\\d+`))

  // the rooms on the server, and older history a page at a time (GET …?before=)
  const bobClient = await openClient({ home: home.bob, devnet: net.dir, rotate: 600, verbose: false })
  try {
    await bobClient.login('bob', PW.bob)
    for (let i = 1; i <= 80; i++) await bobClient.sendRoom('archive', `old ${i}`)
  } finally {
    await bobClient.logout()
    await bobClient.circuits.close()
  }
  at = tui.output().length
  tui.type('/rooms\r')
  await tui.waitFor(/rooms on the server \(by name\):\n {2}#archive {2}80 messages, last \d\d:\d\d:\d\d\n {2}#lobby {2}2 messages, last \d\d:\d\d:\d\d {2}\(joined\)/, at)
  const listing = render(tui.output().slice(at))
  t.match(listing, /your rooms:\n {2}#lobby\nrooms on the server/, '/rooms shows the joined rooms first (alice is in the DM with bob)')
  t.notMatch(listing.slice(listing.indexOf('rooms on the server')).split('\n').filter((l) => l.startsWith('  #')).join('\n'), /bob|alice/, 'and no members or senders')
  at = tui.output().length
  tui.type('/join archive\r')
  await tui.waitFor(/#archive bob: old 80\n/, at)
  const lines = (from: number) => render(tui.output().slice(from)).split('\n').map((l) => /#archive bob: old (\d+)$/.exec(l)?.[1]).filter(Boolean).map(Number)
  t.same(lines(at), Array.from({ length: 20 }, (_, i) => 61 + i), 'joining shows the newest 20')
  at = tui.output().length
  tui.type('/older\r')
  await tui.waitFor(/── end of the older page; \/older for more ──/, at)
  t.same(lines(at), Array.from({ length: 50 }, (_, i) => 11 + i), '/older: the 50 before, oldest first')
  at = tui.output().length
  tui.type('/older\r')
  await tui.waitFor(/── end of the older page \(the start of the history\) ──/, at)
  t.same(lines(at), Array.from({ length: 10 }, (_, i) => 1 + i), 'then the first ten')
  at = tui.output().length
  tui.type('/older\r')
  await tui.waitFor(/nothing older here/, at)

  tui.type('/quit\r')
  t.equal(await tui.exited, 0, '/quit exits with 0')
  t.match(tui.output(), /bye/)
  t.notOk(tui.output().includes(PW.alice), 'the password never reached the terminal')

  // the README's transcript changes on every run (keys, ports): rewritten only on request
  const transcript = elideRuns(render(tui.output())
    .replace(/\d\d:\d\d:\d\d/g, '12:00:00'))
  const target = process.env.MM_UPDATE_TRANSCRIPT ? join(ROOT, 'docs', 'terminal-transcript.txt') : join(tmp('mm-transcript-'), 'terminal-transcript.txt')
  writeFileSync(target,
    '$ marshmello chat --home ~/alice   # the network was remembered at sign-up; bob replies with `marshmello send`\n' + transcript)
})

/** the transcript with each run of more than 5 history lines shown as its first two, a count and its last two */
function elideRuns (text: string): string {
  const out: string[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length;) {
    let j = i
    while (j < lines.length && /^\[12:00:00\] #archive bob: old \d+$/.test(lines[j])) j++
    if (j - i > 5) {
      out.push(lines[i], lines[i + 1], `  … ${j - i - 4} more like these …`, lines[j - 2], lines[j - 1])
      i = j
    } else {
      out.push(lines[i])
      i++
    }
  }
  return out.join('\n')
}
