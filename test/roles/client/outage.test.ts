// An outage seen from the terminal chat, on a live network (server + 3 relays, real
// processes) in a real pseudo-terminal: every relay is stopped, so no circuit can be
// built; the chat says "offline — reconnecting" once (not once per failed request),
// keeps the messages typed meanwhile (each shown as queued), and when the relays are
// started again (same ports, same keys) says "reconnected" once and sends them: each
// arrives exactly once, in order, and is shown as sent. The accounts and the last
// check (what bob reads) are in-process clients; the chat is the process under test.
import t from 'tap'
import { tmp } from '../../helpers/net.js'
import { startNetwork, stopProc, type Network } from '../../helpers/network.js'
import type { ChatClient } from '../../../src/roles/client/chat-client.js'
import { openClient } from '../../../src/roles/client/setup.js'
import { hasScript, render, terminal } from './pty.js'

const PW = { alice: 'alice-password-1', bob: 'bob-password-22' }
const home = { alice: tmp('mm-alice-'), bob: tmp('mm-bob-') }
let net: Network

/** `fn` on an in-process client of `who`, closed after */
async function withClient<T> (who: 'alice' | 'bob', fn: (c: ChatClient) => Promise<T>): Promise<T> {
  const c = await openClient({ home: home[who], devnet: net.dir, rotate: 600, verbose: false })
  // logged out after: the profile lock is released for the processes that use the profile next
  try { return await fn(c) } finally { await c.logout(); await c.circuits.close() }
}

t.test('messages typed during an outage are sent once it ends', { skip: hasScript ? false : 'util-linux script is not installed' }, async (t) => {
  net = await startNetwork({ relays: 3 })
  t.teardown(() => net.stop())
  await Promise.all((['alice', 'bob'] as const).map((u) => withClient(u, (c) => c.register(u, PW[u]))))

  const tui = terminal(['chat', '--user', 'alice', '--home', home.alice, '--devnet', net.dir], { MARSHMELLO_PASSWORD: PW.alice })
  t.teardown(() => { if (tui.child.exitCode === null) tui.child.kill('SIGKILL') })
  await tui.waitFor(/\[#lobby\] >$/)
  tui.type('before the outage\r')
  await tui.waitFor(/#lobby alice: before the outage/)

  const at = tui.output().length
  await Promise.all(net.relays.map((r) => stopProc(r.proc)))
  await tui.waitFor(/! offline — reconnecting/, at, 60_000)
  await tui.waitFor(/\(offline\) >$/, at)
  // message 1 was the one before the outage: these are 2, 3 and 4
  const typed = ['typed offline 1', 'typed offline 2', 'typed offline 3']
  for (const [i, text] of typed.entries()) {
    tui.type(text + '\r')
    await tui.waitFor(new RegExp(`… queued ${i + 2}: "${text}" — offline; it is sent when the network is back`), at)
  }
  await tui.waitFor(/\(offline · 3 to send\) >$/, at)
  // a while offline: the chat keeps trying without printing a line per failure
  await new Promise((r) => setTimeout(r, 8000))

  // the devnet starts each again as it started it: same address, port, keys, name and flags
  await Promise.all(net.relays.map((r) => net.restartRelay(r.nickname)))
  await tui.waitFor(/✓ reconnected/, at, 90_000)
  for (const [i, text] of typed.entries()) await tui.waitFor(new RegExp(`✓ sent ${i + 2}: "${text}"`), at, 60_000)
  for (const text of typed) await tui.waitFor(new RegExp(`#lobby alice: ${text}`), at, 30_000)
  await tui.waitFor(/\[#lobby\] >$/, at)

  const screen = render(tui.output().slice(at)).split('\n')
  t.equal(screen.filter((l) => l.includes('offline — reconnecting')).length, 1, 'one "offline" line')
  t.equal(screen.filter((l) => l.includes('✓ reconnected')).length, 1, 'one "reconnected" line')
  const errors = screen.filter((l) => l.startsWith('!'))
  t.same(errors.filter((l) => !l.includes('offline — reconnecting')), [], 'no other error lines, no flood')

  const lobby = await withClient('bob', async (c) => {
    await c.login('bob', PW.bob)
    return (await c.readRoom('lobby', { limit: 200 })).messages.map((m) => m.text)
  })
  t.same(lobby, ['before the outage', ...typed], 'each message arrived exactly once, in order')
  tui.type('/quit\r')
  t.equal(await tui.exited, 0)
})
