// The outbox across a crash, on a live network (server + 3 relays, real processes) in a
// real pseudo-terminal: every relay is stopped, alice types a message (queued), and her
// chat process is killed with SIGKILL before it could send it. The message is in her
// profile, sealed (outbox.json holds no plaintext); her next chat start, once the relays
// are back, shows it as pending from the last session and sends it under its old client
// id: it arrives exactly once, and the kept outbox is empty again.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { run, tmp } from '../../helpers/net.js'
import { startNetwork, stopProc, type Network } from '../../helpers/network.js'
import { hasScript, terminal } from './pty.js'

const PW = { alice: 'alice-password-1', bob: 'bob-password-22' }
const home = { alice: tmp('mm-alice-'), bob: tmp('mm-bob-') }
let net: Network

const as = async (who: 'alice' | 'bob', args: string[]) => {
  const p = run([...args, '--user', who, '--home', home[who], '--devnet', net.dir], { env: { MARSHMELLO_PASSWORD: PW[who] } })
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}
const jsonLines = (s: string): any[] => s.split('\n').filter(Boolean).map((l) => JSON.parse(l))

/** the chat's own process: the child `script` runs it as (the shell execs node) */
function chatPid (scriptPid: number): number {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(scriptPid)], { encoding: 'utf8' }).stdout.trim()
  const pid = Number(out.split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no child of script ${scriptPid}: ${out}`)
  return pid
}

t.test('a message queued when the chat is killed is sent once at its next start', { skip: hasScript ? false : 'util-linux script is not installed' }, async (t) => {
  net = await startNetwork({ relays: 3 })
  t.teardown(() => net.stop())
  for (const u of ['alice', 'bob'] as const) t.equal((await as(u, ['register'])).code, 0, `register ${u}`)
  const chat = () => terminal(['chat', '--user', 'alice', '--home', home.alice, '--devnet', net.dir], { MARSHMELLO_PASSWORD: PW.alice })

  const first = chat()
  t.teardown(() => { if (first.child.exitCode === null) first.child.kill('SIGKILL') })
  await first.waitFor(/\[#lobby\] >$/)
  first.type('before the crash\r')
  await first.waitFor(/#lobby alice: before the crash/)

  const at = first.output().length
  await Promise.all(net.relays.map((r) => stopProc(r.proc)))
  await first.waitFor(/! offline — reconnecting/, at, 60_000)
  const text = 'typed offline, then the chat was killed'
  first.type(text + '\r')
  await first.waitFor(new RegExp(`… queued 2: "${text}" — offline`), at)
  const kept = join(home.alice, 'profiles', 'alice', 'outbox.json')
  for (let i = 0; i < 100 && !existsSync(kept); i++) await new Promise((r) => setTimeout(r, 50))
  process.kill(chatPid(first.child.pid!), 'SIGKILL')
  await first.exited
  t.ok(existsSync(kept), 'the queued message is kept in the profile')
  const file = readFileSync(kept, 'utf8')
  t.notOk(file.includes('typed offline') || file.includes('lobby'), 'sealed: neither the text nor the room is in the file')

  // the devnet starts each again as it started it: same address, port, keys, name and flags
  await Promise.all(net.relays.map((r) => net.restartRelay(r.nickname)))

  const second = chat()
  t.teardown(() => { if (second.child.exitCode === null) second.child.kill('SIGKILL') })
  await second.waitFor(new RegExp(`… 1 message from your last session not sent yet:\\n {2}1: "${text}" to #lobby — sending`), 0, 90_000)
  await second.waitFor(new RegExp(`✓ sent 1: "${text}"`), 0, 60_000)
  const lobby = jsonLines((await as('bob', ['read', '--room', 'lobby', '--json'])).stdout).map((m) => m.text)
  t.same(lobby, ['before the crash', text], 'it arrived exactly once, after the message before it')
  for (let i = 0; i < 100 && existsSync(kept); i++) await new Promise((r) => setTimeout(r, 50))
  t.notOk(existsSync(kept), 'nothing is kept once it is sent')
  second.type('/quit\r')
  t.equal(await second.exited, 0)
})
