// The command line itself: --version, flags from MARSHMELLO_* variables and from
// --config FILE, secrets refused in argv, and one clear line for a bad command.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, directoryKey, run, tmp } from './helpers/net.js'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))

t.test('--version prints the package version and the Node it runs on', async (t) => {
  const p = run(['--version'])
  t.equal(await p.exited, 0)
  t.equal(p.stdout().trim(), `${pkg.version} (Node ${process.versions.node})`)
})

t.test('a flag from the environment and from a config file', async (t) => {
  const bad = run(['relay', '--port', '0', '--consensus', '/nonexistent'], { env: { MARSHMELLO_DIRECTORY_KEY: 'not-hex' } })
  t.not(await bad.exited, 0)
  t.match(bad.stderr(), /--directory-key must be 64 hex/, 'MARSHMELLO_DIRECTORY_KEY reached the --directory-key flag')

  const dir = tmp()
  const key = directoryKey()
  const cfg = join(dir, 'relay.json')
  writeFileSync(cfg, JSON.stringify({ port: 0, host: '127.0.0.41', 'data-dir': join(dir, 'data'), consensus: join(dir, 'none.json'), 'directory-key': key.fingerprint, nickname: 'fromconfig' }))
  const relay = run(['relay', '--config', cfg])
  t.teardown(() => relay.kill())
  const m = await relay.waitFor(/relay ([0-9a-f]{64}) listening on https:\/\/127\.0\.0\.41:(\d+)/)
  t.ok(m, 'every setting came from the config file')
  t.match(relay.stdout(), join(dir, 'data'))
})

t.test('secrets are refused in argv; a bad command says what to do', async (t) => {
  const p = run(['send', '--user', 'a', '--room', 'lobby', '--password', 'hunter2', 'hi'])
  t.not(await p.exited, 0)
  t.match(p.stderr(), /--password is not accepted on the command line/)
  t.notMatch(p.stderr(), /hunter2/, 'the secret is not echoed back')

  const q = run(['relay'])
  t.equal(await q.exited, 2)
  t.match(q.stderr(), /--help/)

  const u = run(['nosuchcommand'])
  t.not(await u.exited, 0)
  t.equal(u.stderr().trim().split('\n').length <= 3, true, 'a short error, not a stack trace')
})
