// `npm run devnet` under a supervisor: SIGTERM (or SIGINT) sent to the npm process
// alone stops the devnet and every child (npm runs the script under `sh -c`, and
// forwards the signal only to that shell), checked with the pids the devnet reported
// and in /proc; and the connect command it prints runs from the directory it names.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { ROOT, procOf, tmp } from '../../helpers/net.js'
import { freePortBase, isGone, parentOf, pidsOf, readyEvent, survivors, type DevnetEvent } from './fixture.js'

// tap's process tracking puts an --import in every child's NODE_OPTIONS, under which
// node would load the extensionless bin/marshmello as CommonJS: a user's shell has none
const AS_TYPED = 'unset NODE_OPTIONS; '

/** the pids whose command line mentions s */
function processesMentioning (s: string): number[] {
  const found: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(s) && !isGone(Number(name))) found.push(Number(name))
    } catch { /* gone meanwhile */ }
  }
  return found
}

/** npm prints its own banner lines; the devnet's --json events are the lines that are JSON objects */
const jsonEvents = (stdout: string): DevnetEvent[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))

// SIGTERM also runs the printed connect command, whose circuit needs three relays; for
// SIGINT one relay is enough (the server and a relay: children of the devnet all the same)
for (const [signal, seed, relays] of [['SIGTERM', 31337, 3], ['SIGINT', 27449, 1]] as const) {
  t.test(`npm run devnet: ${signal} to npm stops the devnet and every child`, async (t) => {
    const dir = tmp('mm-npm-devnet-')
    const base = await freePortBase(6, 20000 + ((process.pid + seed) % 20000))
    // exec: the pid is npm's own, as a supervisor that started npm holds it
    const npm = spawn('sh', ['-c', `${AS_TYPED}exec npm run devnet -- --dir ${dir} --port-base ${base} --relays ${relays} --json --stats-interval 0`],
      { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    const p = procOf(npm)
    t.teardown(() => {
      for (const pid of processesMentioning(dir)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    })
    await p.waitFor(/"event":"ready"/, 90_000)
    const info = readyEvent(jsonEvents(p.stdout()).map((e) => JSON.stringify(e)).join('\n'))
    const devnetPid = info.pid
    t.not(devnetPid, npm.pid, 'the devnet is not npm itself')
    const between = parentOf(devnetPid)
    t.comment(`npm ${npm.pid} -> ${between === npm.pid ? '' : `${between} -> `}devnet ${devnetPid}`)
    const tree = [devnetPid, ...pidsOf(info), ...(between !== npm.pid ? [between] : [])]
    for (const pid of pidsOf(info)) t.equal(parentOf(pid), devnetPid, `child ${pid} is the devnet's`)

    if (signal === 'SIGTERM') {
      /* the connect command, run from where the devnet says (the checkout: npx) */
      const connect = (jsonEvents(p.stdout()).find((e) => e.event === 'ready') as DevnetEvent).connect as { cwd: string, prefix: string, devnet: string }
      t.same(connect, { cwd: ROOT, prefix: 'npx marshmello', devnet: dir })
      const home = tmp('mm-home-')
      const reg = spawnSync('sh', ['-c', `${AS_TYPED}${connect.prefix} register --devnet ${connect.devnet} --user carol`], {
        cwd: connect.cwd, env: { PATH: process.env.PATH, HOME: home, MARSHMELLO_PASSWORD: 'a long enough test password' }, encoding: 'utf8', timeout: 60_000,
      })
      t.equal(reg.status, 0, `the printed command works from ${connect.cwd}: ${reg.stderr}`)
    }

    process.kill(npm.pid!, signal)
    const code = await Promise.race([p.exited, sleep(20_000).then(() => 'still running')])
    t.not(code, 'still running', `npm exits after ${signal}`)
    t.same(await survivors(tree, 15_000), [], `after ${signal} to npm: the devnet, its shell and its children are gone`)
    t.same(processesMentioning(dir), [], `no process in /proc mentions ${dir}`)
    const stopped = jsonEvents(p.stdout()).find((e) => e.event === 'stopped')
    t.ok(stopped === undefined || stopped.code === 0, 'a clean stop, if it could still say so')
  })
}
