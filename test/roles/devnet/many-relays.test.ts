// A devnet of 20 relays, all posting descriptors from 127.0.0.1: neither their first
// posts nor their heartbeats hit the directory's per-address limit (no 429 line from
// any relay over several heartbeat rounds), and the consensus lists all 20. Started
// in text mode from a directory outside the checkout, whose printed connect command
// (bin/marshmello by its path) is then run from the directory it names.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { run, tmp } from '../../helpers/net.js'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { verifyConsensus } from '../../../src/onion/directory/consensus.js'
import type { DevnetInfo } from '../../../src/roles/devnet/index.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePortBase, pidsOf, survivors } from './fixture.js'

const RELAYS = 20

// tap's process tracking puts an --import in every child's NODE_OPTIONS, under which
// node would load the extensionless bin/marshmello as CommonJS: a user's shell has none
const AS_TYPED = 'unset NODE_OPTIONS; '

t.test(`devnet --relays ${RELAYS}: no descriptor post refused, all listed; the printed command works from where it says`, async (t) => {
  const cwd = tmp('mm-many-cwd-')
  const dir = join(cwd, 'net')
  const base = await freePortBase(RELAYS + 1, 20000 + ((process.pid + 65537) % 20000))
  const p = run(['devnet', '--relays', String(RELAYS), '--dir', dir, '--port-base', String(base), '--stats-interval', '0'], { cwd })
  t.teardown(() => p.kill('SIGKILL'))
  await p.waitFor(/^devnet ready in/m, 240_000)
  const info = JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetInfo
  // three heartbeat rounds (every 5 s) after the last relay came up
  await sleep(16_000)
  const res = await fetchDocument(`${info.server.url}/v1/directory/consensus`)
  t.equal(verifyConsensus(JSON.parse(res.text), info.directoryKey, Date.now()).relays.length, RELAYS, `the consensus lists all ${RELAYS}`)
  const refused = p.stderr().split('\n').filter((l) => /status=429|"status":429|too many descriptor posts|directory refused our descriptor/.test(l))
  t.same(refused, [], 'no relay had a descriptor post refused')

  const m = /^connect from (.+) with: (.+) chat --devnet (\S+)$/m.exec(p.stdout())
  t.ok(m, `a connect line: ${p.stdout()}`)
  t.equal(m?.[1], cwd, 'it names the directory the devnet was started from')
  t.match(m?.[2], /\/bin\/marshmello$/, 'outside the checkout: bin/marshmello by its path')
  t.equal(m?.[3], 'net', 'and the devnet dir as typed from there')
  const reg = /^ {2}scripting: {2}(.+)$/m.exec(p.stdout())
  t.ok(reg, 'a scripting line')
  const r = spawnSync('sh', ['-c', AS_TYPED + reg![1]], { cwd: m![1], env: { PATH: process.env.PATH, HOME: tmp('mm-home-'), MARSHMELLO_PASSWORD: 'a long enough test password' }, encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0, `\`${reg![1]}\` runs from ${m![1]}: ${r.stderr}`)

  t.equal(await p.kill('SIGTERM'), 0)
  t.same(await survivors(pidsOf(info), 15_000), [], 'no child left')
})
