// `marshmello devnet` end to end: 5 relays come up and are listed in the consensus
// signed by the three directory authorities it runs by default (the server's and two
// `server --service directory` processes: three signatures, PROTOCOL §7.8), a consensus
// signed by one of them alone is refused, devnet.json matches the ready event, SIGTERM stops every child (exit 0),
// a second run on the same dir keeps every identity, SIGKILL of the devnet leaves
// no orphans; a relay that dies (kill -9) is reported while the network keeps
// serving, `devnet restart` (or --restart-after) brings it back listed, the server's
// death ends the devnet (exit 1); a start that fails (port taken) leaves nothing behind.
import t from 'tap'
import { statSync, readFileSync, existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { ROOT, run, tmp } from '../../helpers/net.js'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { verifyConsensus } from '../../../src/onion/directory/consensus.js'
import type { DevnetInfo } from '../../../src/roles/devnet/index.js'
import { events, freePortBase, isGone, parentOf, pidsOf, readyEvent, survivors } from './fixture.js'

const READY = /"event":"ready"/

t.test('devnet: 5 relays, three authorities, devnet.json, clean stop, same identities on restart, no orphans', async (t) => {
  const dir = tmp('mm-devnet-')
  const base = await freePortBase(8)
  const args = ['devnet', '--relays', '5', '--dir', dir, '--port-base', String(base), '--json', '--stats-interval', '1']

  const first = run(args)
  t.teardown(() => first.kill('SIGKILL'))
  await first.waitFor(READY, 60_000) // 6–13 s alone; CI runs two heavy files beside it
  const ready = readyEvent(first.stdout())
  const file = join(dir, 'devnet.json')
  const info = JSON.parse(readFileSync(file, 'utf8')) as DevnetInfo
  t.equal(statSync(file).mode & 0o777, 0o644, 'devnet.json is 0644')
  const { event: _e, connect, ...fromEvent } = ready as typeof ready & { connect: unknown }
  t.same(fromEvent, info, 'the ready event carries devnet.json')
  t.same(connect, { cwd: ROOT, prefix: 'npx marshmello', devnet: dir }, 'and how to connect from where it was started: npx in the checkout')
  t.equal(info.version, 1)
  t.equal(info.dir, dir)
  t.equal(info.host, '127.0.0.1')
  t.match(info.directoryKey, /^[0-9a-f]{64}(,[0-9a-f]{64}){2}$/, 'three authority keys pinned')
  t.equal(info.directoryThreshold, 2, 'a majority must sign')
  t.same(info.authorities.map((a) => a.url), [base, base + 6, base + 7].map((p) => `https://127.0.0.1:${p}`), 'the server\'s authority, then two above the relays')
  t.same(info.authorities.map((a) => a.fingerprint).join(','), info.directoryKey)
  t.match(info.server, { url: `https://127.0.0.1:${base}`, host: '127.0.0.1', port: base, fingerprint: /^[0-9a-f]{64}$/, dataDir: join(dir, 'server') })
  t.equal(info.relays.length, 5)
  info.relays.forEach((r, i) => t.match(r, {
    nickname: `relay${i + 1}`, url: `https://127.0.0.1:${base + i + 1}`, host: '127.0.0.1', port: base + i + 1, fingerprint: /^[0-9a-f]{64}$/, dataDir: join(dir, `relay-${i + 1}`),
  }))
  t.equal(new Set(info.relays.map((r) => r.fingerprint)).size, 5, 'relay identities are distinct')

  const res = await fetchDocument(`${info.server.url}/v1/directory/consensus`)
  const consensus = verifyConsensus(JSON.parse(res.text), info.directoryKey, Date.now())
  t.same(consensus.relays.map((r) => r.fingerprint).sort(), info.relays.map((r) => r.fingerprint).sort(), 'the signed consensus lists exactly the 5 relays')
  t.equal(consensus.server?.fingerprint, info.server.fingerprint, 'and the server as final hop')
  // every authority serves the same body; within a couple of seconds it carries all three signatures
  let signed = 0
  for (let i = 0; i < 50 && signed < 3; i++) {
    const docs = await Promise.all(info.authorities.map(async (a) => JSON.parse((await fetchDocument(`${a.url}/v1/directory/consensus`)).text)))
    signed = Math.min(...docs.map((d) => d.signatures.length))
    if (signed < 3) await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(signed, 3, 'the consensus carries three authority signatures')
  const one = JSON.parse(res.text)
  t.throws(() => verifyConsensus({ ...one, signatures: one.signatures.slice(0, 1) }, info.directoryKey, Date.now()), { code: 'MM_ERR_CONSENSUS_THRESHOLD' }, 'one signature of three is refused')

  const pids = pidsOf(info)
  t.equal(new Set(pids).size, 8)
  for (const pid of pids) {
    t.notOk(isGone(pid), `child ${pid} is alive`)
    t.equal(parentOf(pid), first.child.pid, `child ${pid} is the devnet's own child`)
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    t.ok(argv.indexOf('--single-threaded-gc') > 0 && argv.indexOf('--single-threaded-gc') < argv.findIndex((a) => a.endsWith('cli.js')), `child ${pid} runs with single-threaded GC (a node flag, before the script)`)
  }
  await first.waitFor(/"event":"stats"/, 5000)
  const stats = events(first.stdout()).find((e) => e.event === 'stats')!
  t.match(stats, { users: Number, messages: Number, circuits: Number, relaysListed: 5, unreachable: [] }, 'live counts through the operator path (/metrics with each role\'s token)')

  t.equal(await first.kill('SIGTERM'), 0, 'SIGTERM: exit code 0')
  t.same(await survivors(pids, 10_000), [], 'every child is gone')
  const evs = events(first.stdout())
  t.equal(evs.at(-1)?.event, 'stopped')
  t.equal(evs.filter((e) => e.event === 'child-exit' && e.expected === true).length, 8, 'eight expected child exits')
  t.notOk(existsSync(file), 'devnet.json is removed on a clean stop')

  /* second run, same dir: same identities; then SIGKILL the devnet itself */
  const second = run(args)
  t.teardown(() => second.kill('SIGKILL'))
  await second.waitFor(READY, 60_000)
  const again = readyEvent(second.stdout())
  t.equal(again.directoryKey, info.directoryKey, 'same directory key')
  t.equal(again.server.fingerprint, info.server.fingerprint, 'same server identity')
  t.same(again.relays.map((r) => r.fingerprint), info.relays.map((r) => r.fingerprint), 'same relay identities')
  const pids2 = pidsOf(again)
  t.equal(await second.kill('SIGKILL'), null)
  t.same(await survivors(pids2, 10_000), [], 'SIGKILL of the devnet: no orphans within 10 s')
})

t.test('devnet: a relay that dies is reported, sends still flow, `devnet restart` brings it back, the server dying ends it (exit 1)', async (t) => {
  const dir = tmp('mm-devnet-')
  const base = await freePortBase(5, 20000 + ((process.pid + 7919) % 20000))
  const p = run(['devnet', '--authorities', '1', '--relays', '4', '--dir', dir, '--port-base', String(base), '--json', '--stats-interval', '0'])
  t.teardown(() => p.kill('SIGKILL'))
  await p.waitFor(READY, 60_000)
  const info = readyEvent(p.stdout())
  const [victim, ...others] = [info.relays[1], info.relays[0], ...info.relays.slice(2)]

  process.kill(victim.pid, 'SIGKILL')
  await p.waitFor(/"event":"child-exit"[^\n]*"role":"relay2"/, 10_000)
  const exit = events(p.stdout()).find((e) => e.event === 'child-exit' && e.role === 'relay2')
  t.match(exit, { pid: victim.pid, expected: false, signal: 'SIGKILL' }, 'a child-exit event names the relay')
  t.notOk(exit && 'restartInMs' in exit, 'no restart is announced (none was asked for)')
  await p.waitFor(/relay2 \(pid \d+\) exited unexpectedly/, 5000)
  t.match(p.stderr(), new RegExp(`relay2 \\(pid ${victim.pid}\\) exited unexpectedly \\(killed by SIGKILL\\); the network keeps running without it; start it again with: npx marshmello devnet restart relay2 --dir ${dir}`), 'and a line says so, and how to restart it')
  t.equal(p.child.exitCode, null, 'the devnet keeps running')
  for (const r of [info.server, ...others]) t.notOk(isGone(r.pid), `pid ${r.pid} still runs`)

  /* the network without relay2 still serves a register, a send and a read */
  const home = tmp('mm-home-')
  const cli = async (args: string[]) => {
    const c = run(args, { env: { HOME: home, MARSHMELLO_PASSWORD: 'a long enough test password' } })
    const code = await c.exited
    return { code, out: c.stdout(), err: c.stderr() }
  }
  const reg = await cli(['register', '--devnet', dir, '--user', 'alice'])
  t.equal(reg.code, 0, `register with relay2 down: ${reg.err}`)
  const sent = await cli(['send', '--devnet', dir, '--user', 'alice', '--room', 'lobby', 'sent while relay2 was down'])
  t.equal(sent.code, 0, `send with relay2 down: ${sent.err}`)
  const read = await cli(['read', '--devnet', dir, '--user', 'alice', '--room', 'lobby', '--json'])
  t.equal(read.code, 0, `read with relay2 down: ${read.err}`)
  t.match(read.out, /"text":"sent while relay2 was down"/)

  /* `marshmello devnet restart relay2` from another process: same identity and address, a fresh descriptor listed */
  const asked = Date.now()
  const back = await cli(['devnet', 'restart', 'relay2', '--dir', dir])
  t.equal(back.code, 0, `devnet restart: ${back.err}`)
  const m = /relay2 is back \(pid (\d+)\) at (\S+), listed in the consensus again/.exec(back.out)
  t.ok(m, `it says relay2 is back: ${back.out}`)
  const pid = Number(m?.[1])
  t.not(pid, victim.pid, 'a new process')
  t.equal(m?.[2], victim.url, 'at the same address')
  t.notOk(isGone(pid), 'which runs')
  t.equal(parentOf(pid), p.child.pid, "as the devnet's own child")
  const ev = events(p.stdout()).find((e) => e.event === 'relay-restart')
  t.match(ev, { role: 'relay2', ok: true, pid, url: victim.url }, 'a relay-restart event')
  const file = JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetInfo
  t.match(file.relays[1], { nickname: 'relay2', pid, fingerprint: victim.fingerprint, port: victim.port }, 'devnet.json has its new pid, same identity')
  const res = await fetchDocument(`${info.server.url}/v1/directory/consensus`)
  const listed = verifyConsensus(JSON.parse(res.text), info.directoryKey, Date.now()).relays.find((r) => r.fingerprint === victim.fingerprint)
  t.ok(listed && listed.published >= asked - 1000, 'the consensus lists relay2 again, with a descriptor the new process signed after the restart was asked')
  const again = await cli(['devnet', 'restart', 'relay2', '--dir', dir])
  t.equal(again.code, 0)
  t.match(again.out, new RegExp(`relay2 is running \\(pid ${pid}\\)`), 'asking again for a running relay only says it runs')

  /* the server's death ends the devnet loudly */
  process.kill(info.server.pid, 'SIGKILL')
  t.equal(await p.exited, 1, 'exit code 1')
  t.same(await survivors([...pidsOf(info), pid], 10_000), [], 'every relay is stopped, the restarted one too')
  t.match(p.stderr(), /server \(pid \d+\) exited unexpectedly \(killed by SIGKILL\); stopping the devnet/)
  const evs = events(p.stdout())
  t.match(evs.find((e) => e.event === 'child-exit' && e.role === 'server'), { expected: false, signal: 'SIGKILL' })
  t.match(evs.at(-1), { event: 'stopped', code: 1 })
  t.notOk(existsSync(join(dir, 'devnet.json')), 'devnet.json is removed')
})

t.test('devnet --restart-after: a relay that dies is restarted after the delay, and it says so', async (t) => {
  const dir = tmp('mm-devnet-')
  const base = await freePortBase(3, 20000 + ((process.pid + 104729) % 20000))
  const p = run(['devnet', '--authorities', '1', '--relays', '2', '--dir', dir, '--port-base', String(base), '--json', '--stats-interval', '0', '--restart-after', '1'])
  t.teardown(() => p.kill('SIGKILL'))
  await p.waitFor(READY, 60_000)
  const info = readyEvent(p.stdout())
  process.kill(info.relays[0].pid, 'SIGKILL')
  await p.waitFor(/"event":"relay-restart"/, 60_000)
  const evs = events(p.stdout())
  t.match(evs.find((e) => e.event === 'child-exit' && e.role === 'relay1'), { pid: info.relays[0].pid, expected: false, restartInMs: 1000 }, 'the exit event announces the restart')
  t.match(p.stderr(), /relay1 \(pid \d+\) exited unexpectedly \(killed by SIGKILL\); the network keeps running without it; restarting it in 1 s/)
  const back = evs.find((e) => e.event === 'relay-restart')!
  t.match(back, { role: 'relay1', ok: true, url: info.relays[0].url })
  t.not(back.pid, info.relays[0].pid)
  t.ok(await p.waitFor(/relay1 restarted \(pid \d+\) at \S+, listed in the consensus again/, 5000), 'and a line says it is back')
  t.equal(await p.kill('SIGTERM'), 0)
  t.same(await survivors([...pidsOf(info), back.pid], 10_000), [], 'no child left')
})

t.test('devnet: a start that fails (server port taken) says why and leaves no child', async (t) => {
  const dir = tmp('mm-devnet-')
  const base = await freePortBase(3, 20000 + ((process.pid + 15485) % 20000))
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(base, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const p = run(['devnet', '--authorities', '1', '--relays', '2', '--dir', dir, '--port-base', String(base)])
  t.teardown(() => p.kill('SIGKILL'))
  t.equal(await p.exited, 1)
  t.match(p.stderr(), /devnet did not start: server exited during start-up/)
  t.match(p.stderr(), /\[server\] .*EADDRINUSE|address already in use/i, "the server's own error is passed on")
  t.notOk(existsSync(join(dir, 'devnet.json')))
})
