// A devnet of 20 relays, all posting descriptors from 127.0.0.1: neither their first
// posts nor their heartbeats hit the directory's per-address limit (no 429 line from
// any relay over several heartbeat rounds), and the consensus lists all 20. Started
// in text mode from a directory outside the checkout, whose printed connect command
// (bin/marshmello by its path) is then run from the directory it names.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { waitUntil } from '../../helpers/wait.js'
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
  const p = run(['devnet', '--authorities', '1', '--relays', String(RELAYS), '--dir', dir, '--port-base', String(base), '--stats-interval', '0'], { cwd })
  t.teardown(() => p.kill('SIGKILL'))
  await p.waitFor(/^devnet ready in/m, 240_000)
  const info = JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetInfo
  // three heartbeat rounds after the last relay came up: every relay's listed
  // descriptor is re-signed (a new `published`) three times. 20 heartbeats every 5 s from
  // one address would drain the per-address burst within ~10 s, so a heartbeat that fell
  // to that budget would be refused by the third round
  const consensus = async () => verifyConsensus(JSON.parse((await fetchDocument(`${info.server.url}/v1/directory/consensus`)).text), info.directoryKey, Date.now())
  const rounds = new Map<string, Set<number>>()
  const threeRounds = await waitUntil(async () => {
    for (const d of (await consensus()).relays) {
      const seen = rounds.get(d.fingerprint) ?? new Set<number>()
      seen.add(d.published)
      rounds.set(d.fingerprint, seen)
    }
    return rounds.size === RELAYS && [...rounds.values()].every((s) => s.size > 3)
  }, { timeoutMs: 60_000, everyMs: 500 })
  t.ok(threeRounds, `each relay heartbeat three times (${[...rounds.values()].map((s) => s.size - 1).join(' ')})`)
  t.equal((await consensus()).relays.length, RELAYS, `the consensus lists all ${RELAYS}`)
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
