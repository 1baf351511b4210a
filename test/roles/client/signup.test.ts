// Signing up, logging in and a second computer (issue 17), on a live network (server
// + 3 relays, real processes), in a real pseudo-terminal where the user types: a
// refused sign-up leaves no profile behind (too short a password, a taken name); the
// terminal asks for the password twice, explains what is wrong in plain words and asks
// again; a wrong password asks again, 3 tries. On a computer without the profile a
// login never replaces the keys silently: it is refused with the way to move the
// profile, a profile with other keys is refused, `profile export` / `import` moves the
// profile with its keys (contacts see no change), and a replacement happens only when
// typed out, after saying what contacts will see, which they then do. What only sets a
// test up or looks at its outcome (the accounts, alice's reads, bob's DMs from his
// first computer) runs in-process; the commands and the terminal are the processes.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { run, tmp } from '../../helpers/net.js'
import { startNetwork, type Network } from '../../helpers/network.js'
import { generateIdentity } from '../../../src/roles/client/e2e/keys.js'
import { createProfile } from '../../../src/roles/client/profile/identity.js'
import type { ChatClient } from '../../../src/roles/client/chat-client.js'
import { openClient } from '../../../src/roles/client/setup.js'
import { jsonMessage } from '../../../src/roles/client/terminal/format.js'
import { hasScript, render, terminal } from './pty.js'

const skip = hasScript ? false : 'util-linux script is not installed'
const PW = { alice: 'alice-password-1', bob: 'bob-password-22' }
let net: Network
const home = { alice: tmp('mm-alice-'), bob: tmp('mm-bob-') }

const mm = async (args: string[], password?: string) => {
  const p = run(args[0] === 'profile' ? args : [...args, '--devnet', net.dir], { env: password === undefined ? {} : { MARSHMELLO_PASSWORD: password } })
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}
const hasProfile = (h: string, user: string) => existsSync(join(h, 'profiles', user))
/** `fn` on an in-process client with its profile in `h`, closed after */
async function inProcess<T> (h: string, fn: (c: ChatClient) => Promise<T>): Promise<T> {
  const c = await openClient({ home: h, devnet: net.dir, rotate: 600, verbose: false })
  // logged out after: the profile lock is released for the processes that use the profile next
  try { return await fn(c) } finally { await c.logout(); await c.circuits.close() }
}
/** what `read --json` as alice prints (a login of her own each time, as the command's) */
const aliceReads = (what: { dms: true } | { room: string }) => inProcess(home.alice, async (c) => {
  await c.login('alice', PW.alice)
  const page = 'room' in what ? await c.readRoom(what.room, { limit: 200 }) : await c.readDms({ limit: 200 })
  return page.messages.map((m) => JSON.parse(jsonMessage(m)))
})
const bobSends = (to: string, text: string) => inProcess(home.bob, async (c) => { await c.login('bob', PW.bob); return await c.sendDm(to, text) })
const chat = (h: string, user?: string) => terminal(['chat', '--home', h, '--devnet', net.dir, ...(user ? ['--user', user] : [])], { MARSHMELLO_PASSWORD: '' })

t.before(async () => {
  net = await startNetwork({ relays: 3 })
  await Promise.all((['alice', 'bob'] as const).map((u) => inProcess(home[u], (c) => c.register(u, PW[u]))))
})
t.teardown(async () => { await net?.stop() })

t.test('a refused sign-up leaves nothing behind', async (t) => {
  const h = tmp('mm-fail-')
  const [short, taken] = await Promise.all([
    mm(['register', '--user', 'carol', '--home', h], 'seven77'),
    mm(['register', '--user', 'bob', '--home', h], 'another-password-1'),
  ])
  t.not(short.code, 0)
  t.match(short.stderr, /that password is 7 characters; a password is at least 8 characters long/, 'said in plain words')
  t.match(short.stderr, /MM_ERR_PASSWORD/)
  t.notOk(hasProfile(h, 'carol'), 'no profile')
  t.not(taken.code, 0)
  t.match(taken.stderr, /MM_ERR_USER_EXISTS/)
  t.notOk(hasProfile(h, 'bob'), 'the server refused: no profile either')
  const ok = await mm(['register', '--user', 'carol', '--home', h], 'carol-password-1')
  t.equal(ok.code, 0, 'the same name signs up afterwards: nothing was locked')
  t.ok(hasProfile(h, 'carol'))
})

t.test('the terminal sign-up asks again', { skip }, async (t) => {
  const h = tmp('mm-tui-signup-')
  const tui = chat(h)
  t.teardown(() => { if (tui.child.exitCode === null) tui.child.kill('SIGKILL') })
  await tui.waitFor(/username:$/)
  tui.type('bob\r')
  await tui.waitFor(/\[s\]ign up as bob, \[r\]eplace the keys of your existing account bob, or \[q\]uit\?$/)
  tui.type('s\r')
  await tui.waitFor(/choose a password \(a password is at least 8 characters long \(at most 1,024\)\):$/)
  tui.type('short1\r')
  await tui.waitFor(/! that password is 6 characters; a password is at least 8 characters long .*; try again/)
  let at = tui.output().length
  tui.type('dave-password-1\r')
  await tui.waitFor(/type it again:$/, at)
  tui.type('dave-password-2\r')
  await tui.waitFor(/! the two passwords differ; try again/, at)
  at = tui.output().length
  tui.type('dave-password-1\r')
  await tui.waitFor(/type it again:$/, at)
  tui.type('dave-password-1\r')
  await tui.waitFor(/! the name bob is taken/, at)
  t.notOk(hasProfile(h, 'bob'), 'nothing written for the taken name')
  await tui.waitFor(/choose another username \(empty to quit\):$/, at)
  tui.type('dave\r')
  at = tui.output().length
  await tui.waitFor(/choose a password/, at)
  tui.type('dave-password-1\r')
  await tui.waitFor(/type it again:$/, at)
  tui.type('dave-password-1\r')
  await tui.waitFor(/signed up as dave/, at)
  await tui.waitFor(/logged in as dave/, at)
  t.ok(hasProfile(h, 'dave'))
  t.notOk(tui.output().includes('dave-password'), 'no password reached the screen')
  tui.type('/quit\r')
  t.equal(await tui.exited, 0)
})

t.test('a wrong password asks again, 3 tries', { skip }, async (t) => {
  const tui = chat(home.alice, 'alice')
  t.teardown(() => { if (tui.child.exitCode === null) tui.child.kill('SIGKILL') })
  await tui.waitFor(/password:$/)
  tui.type('wrong-one-1\r')
  await tui.waitFor(/! wrong password; try again \(2 tries left\)/)
  tui.type(PW.alice + '\r')
  await tui.waitFor(/logged in as alice/)
  tui.type('/quit\r')
  t.equal(await tui.exited, 0)

  const three = chat(home.alice, 'alice')
  t.teardown(() => { if (three.child.exitCode === null) three.child.kill('SIGKILL') })
  await three.waitFor(/password:$/)
  for (const left of ['2 tries', '1 try']) {
    three.type('wrong-again-1\r')
    await three.waitFor(new RegExp(`try again \\(${left} left\\)\npassword:$`))
  }
  three.type('wrong-again-1\r')
  t.not(await three.exited, 0, 'the third wrong password ends it')
  t.match(render(three.output()), /wrong password 3 times/)
})

t.test('a second computer never replaces keys silently', async (t) => {
  const second = tmp('mm-second-')
  // a profile with other keys (left by an older client's failed sign-up): refused, keys untouched
  const stale = tmp('mm-stale-')
  await createProfile(stale, 'bob', PW.bob, generateIdentity())
  const [noProfile, mismatch] = await Promise.all([
    mm(['send', '--room', 'lobby', '--user', 'bob', '--home', second, 'from nowhere'], PW.bob),
    mm(['send', '--room', 'lobby', '--user', 'bob', '--home', stale, 'from the stale profile'], PW.bob),
  ])
  t.not(noProfile.code, 0)
  t.match(noProfile.stderr, /MM_ERR_PROFILE_UNKNOWN/)
  t.match(noProfile.stderr, /marshmello profile export --user bob --out FILE.*marshmello profile import FILE/, 'says how to move the profile')
  t.notOk(hasProfile(second, 'bob'), 'and writes nothing')

  t.not(mismatch.code, 0)
  t.match(mismatch.stderr, /MM_ERR_KEYS_MISMATCH/)
  const lobby = await aliceReads({ room: 'lobby' })
  t.notOk(lobby.some((m) => m.text === 'from the stale profile'), 'nothing was sent')

  // alice pins bob's key
  await bobSends('alice', 'from the first computer')
  let dms = await aliceReads({ dms: true })
  t.match(dms.at(-1), { from: 'bob', text: 'from the first computer', verified: true })

  // export / import: the same keys on the second computer
  const file = join(tmp('mm-export-'), 'bob.profile')
  const ex = await mm(['profile', 'export', '--user', 'bob', '--home', home.bob, '--out', file], PW.bob)
  t.equal(ex.code, 0, ex.stderr)
  const wrong = await mm(['profile', 'import', file, '--home', second], 'not-the-password')
  t.not(wrong.code, 0)
  t.match(wrong.stderr, /MM_ERR_BAD_PASSWORD/, 'a wrong password is refused')
  t.notOk(hasProfile(second, 'bob'))
  const im = await mm(['profile', 'import', file, '--home', second], PW.bob)
  t.equal(im.code, 0, im.stderr)
  t.equal((await mm(['send', '--to', 'alice', 'from the second computer', '--user', 'bob', '--home', second], PW.bob)).code, 0)
  await bobSends('alice', 'first computer still works')
  dms = await aliceReads({ dms: true })
  for (const text of ['from the second computer', 'first computer still works']) {
    const m = dms.find((d) => d.text === text)
    t.match(m, { from: 'bob', verified: true }, `${text}: verified, no key change`)
    t.notOk(m && 'warning' in m)
  }
})

t.test('replacing keys only when typed out, after saying what contacts will see', { skip }, async (t) => {
  const third = tmp('mm-third-')
  const tui = chat(third)
  t.teardown(() => { if (tui.child.exitCode === null) tui.child.kill('SIGKILL') })
  await tui.waitFor(/username:$/)
  tui.type('bob\r')
  await tui.waitFor(/no profile for bob on this computer\.\n.*\n.*marshmello profile import FILE/)
  await tui.waitFor(/or \[q\]uit\?$/)
  tui.type('r\r')
  await tui.waitFor(/Every contact will see\n"bob's key changed" and must verify you again/)
  await tui.waitFor(/type "replace" to replace the keys, anything else to stop:$/)
  tui.type('no\r')
  t.not(await tui.exited, 0, 'anything but "replace" stops')
  t.match(render(tui.output()), /the keys of bob were not replaced; nothing changed/)
  t.notOk(hasProfile(third, 'bob'))
  const still = await aliceReads({ dms: true })
  t.ok(still.every((m) => m.verified), 'alice still verifies bob')

  const yes = chat(third)
  t.teardown(() => { if (yes.child.exitCode === null) yes.child.kill('SIGKILL') })
  await yes.waitFor(/username:$/)
  yes.type('bob\r')
  await yes.waitFor(/or \[q\]uit\?$/)
  yes.type('r\r')
  await yes.waitFor(/type "replace"/)
  yes.type('replace\r')
  await yes.waitFor(/password of the account bob:$/)
  yes.type(PW.bob + '\r')
  await yes.waitFor(/new keys for bob are in place; contacts will see that your key changed/)
  await yes.waitFor(/logged in as bob/)
  yes.type('/dm alice\r')
  await yes.waitFor(/\[@alice\]/)
  yes.type('from the replaced keys\r')
  await yes.waitFor(/✓ bob → alice: from the replaced keys/)
  yes.type('/quit\r')
  t.equal(await yes.exited, 0)
  const dms = await aliceReads({ dms: true })
  const m = dms.find((d) => d.from === 'bob' && d.verified === false)
  t.ok(m, 'alice sees the change')
  t.match(m?.warning, /bob's key changed/, 'as a key-change warning, as the prompt said')
})
