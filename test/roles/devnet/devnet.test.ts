// `marshmello devnet` end to end: 5 relays come up and are listed in the signed
// consensus, devnet.json matches the ready event, SIGTERM stops every child (exit 0),
// a second run on the same dir keeps every identity, SIGKILL of the devnet leaves
// no orphans, a relay that dies ends the devnet loudly (exit 1), and a start that
// fails (port taken) leaves nothing behind.
import t from 'tap'
import { statSync, readFileSync, existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { run, tmp } from '../../helpers/net.js'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { verifyConsensus } from '../../../src/onion/directory/consensus.js'
import type { DevnetInfo } from '../../../src/roles/devnet/index.js'
import { events, freePortBase, isGone, parentOf, pidsOf, readyEvent, survivors } from './fixture.js'

const READY = /"event":"ready"/

t.test('devnet: 5 relays, devnet.json, clean stop, same identities on restart, no orphans', async (t) => {
  const dir = tmp('mm-devnet-')
  const base = await freePortBase(6)
  const args = ['devnet', '--relays', '5', '--dir', dir, '--port-base', String(base), '--json', '--stats-interval', '1']

  const first = run(args)
  t.teardown(() => first.kill('SIGKILL'))
  await first.waitFor(READY, 30_000)
  const ready = readyEvent(first.stdout())
  const file = join(dir, 'devnet.json')
  const info = JSON.parse(readFileSync(file, 'utf8')) as DevnetInfo
  t.equal(statSync(file).mode & 0o777, 0o644, 'devnet.json is 0644')
  const { event: _e, ...fromEvent } = ready
  t.same(fromEvent, info, 'the ready event carries devnet.json')
  t.equal(info.version, 1)
  t.equal(info.dir, dir)
  t.equal(info.host, '127.0.0.1')
  t.match(info.directoryKey, /^[0-9a-f]{64}$/)
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

  const pids = pidsOf(info)
  t.equal(new Set(pids).size, 6)
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
  t.equal(evs.filter((e) => e.event === 'child-exit' && e.expected === true).length, 6, 'six expected child exits')
  t.notOk(existsSync(file), 'devnet.json is removed on a clean stop')

  /* second run, same dir: same identities; then SIGKILL the devnet itself */
  const second = run(args)
  t.teardown(() => second.kill('SIGKILL'))
  await second.waitFor(READY, 30_000)
  const again = readyEvent(second.stdout())
  t.equal(again.directoryKey, info.directoryKey, 'same directory key')
  t.equal(again.server.fingerprint, info.server.fingerprint, 'same server identity')
  t.same(again.relays.map((r) => r.fingerprint), info.relays.map((r) => r.fingerprint), 'same relay identities')
  const pids2 = pidsOf(again)
  t.equal(await second.kill('SIGKILL'), null)
  t.same(await survivors(pids2, 10_000), [], 'SIGKILL of the devnet: no orphans within 10 s')
})

t.test('devnet: a relay that dies ends the devnet with a loud report and exit 1', async (t) => {
  const dir = tmp('mm-devnet-')
  const base = await freePortBase(4, 20000 + ((process.pid + 7919) % 20000))
  const p = run(['devnet', '--relays', '3', '--dir', dir, '--port-base', String(base), '--json'])
  t.teardown(() => p.kill('SIGKILL'))
  await p.waitFor(READY, 30_000)
  const info = readyEvent(p.stdout())
  process.kill(info.relays[1].pid, 'SIGKILL')
  t.equal(await p.exited, 1, 'exit code 1')
  t.same(await survivors(pidsOf(info), 10_000), [], 'the others are stopped')
  t.match(p.stderr(), /relay2 \(pid \d+\) exited unexpectedly \(killed by SIGKILL\)/)
  const evs = events(p.stdout())
  t.match(evs.find((e) => e.event === 'child-exit' && e.role === 'relay2'), { expected: false, signal: 'SIGKILL' })
  t.match(evs.at(-1), { event: 'stopped', code: 1 })
})

t.test('devnet: a start that fails (server port taken) says why and leaves no child', async (t) => {
  const dir = tmp('mm-devnet-')
  const base = await freePortBase(3, 20000 + ((process.pid + 15485) % 20000))
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(base, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const p = run(['devnet', '--relays', '2', '--dir', dir, '--port-base', String(base)])
  t.teardown(() => p.kill('SIGKILL'))
  t.equal(await p.exited, 1)
  t.match(p.stderr(), /devnet did not start: server exited during start-up/)
  t.match(p.stderr(), /\[server\] .*EADDRINUSE|address already in use/i, "the server's own error is passed on")
  t.notOk(existsSync(join(dir, 'devnet.json')))
})
