// How the devnet tells the user to run this program (src/roles/devnet/connect-hint.ts):
// `npx marshmello` inside the checkout (npm's INIT_CWD included), the path of
// bin/marshmello outside it, `marshmello` when that name on the user's own PATH is
// this program (but not through a node_modules/.bin npm put first), the single
// executable's path, and shell quoting. Checked on directories built for the test.
import t from 'tap'
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dirArg, invocation, shellQuote, type InvocationSource } from '../../../src/roles/devnet/connect-hint.js'
import { tmp } from '../../helpers/net.js'

function checkout (base: string): string {
  mkdirSync(join(base, 'bin'), { recursive: true })
  mkdirSync(join(base, 'build'), { recursive: true })
  writeFileSync(join(base, 'package.json'), JSON.stringify({ name: 'marshmello' }))
  writeFileSync(join(base, 'bin', 'marshmello'), '#!/bin/sh\n')
  chmodSync(join(base, 'bin', 'marshmello'), 0o755)
  writeFileSync(join(base, 'build', 'cli.js'), '')
  return base
}

const src = (o: Partial<InvocationSource>): InvocationSource => ({ cwd: '/', env: { PATH: '/usr/bin' }, sea: false, execPath: '/usr/bin/node', ...o })

t.test('a checkout: npx inside it, the bin path outside it', async (t) => {
  const root = checkout(join(tmp('mm-hint-'), 'mm'))
  const script = join(root, 'build', 'cli.js')
  t.same(invocation(src({ cwd: root, script })), { cwd: root, prefix: 'npx marshmello' })
  mkdirSync(join(root, 'docs'))
  t.same(invocation(src({ cwd: join(root, 'docs'), script })), { cwd: join(root, 'docs'), prefix: 'npx marshmello' }, 'from a subdirectory too')
  const elsewhere = tmp('mm-hint-cwd-')
  t.same(invocation(src({ cwd: elsewhere, script })), { cwd: elsewhere, prefix: join(root, 'bin', 'marshmello') }, 'outside: the absolute path of bin/marshmello')
  t.same(invocation(src({ cwd: join(root, '..'), script })), { cwd: join(root, '..'), prefix: './mm/bin/marshmello' }, 'below the cwd: a relative path')
  t.same(invocation(src({ cwd: root, script, env: { PATH: '/usr/bin', INIT_CWD: elsewhere, npm_lifecycle_event: 'devnet' } })), { cwd: elsewhere, prefix: join(root, 'bin', 'marshmello') },
    'under npm (cwd: the package root), the user stands in INIT_CWD')
  t.same(invocation(src({ cwd: elsewhere, script, env: { PATH: '/usr/bin', INIT_CWD: root } })).cwd, elsewhere, 'an INIT_CWD inherited from an unrelated npm run is ignored')
})

t.test('installed: `marshmello` when the user\'s PATH has this program under that name', async (t) => {
  const base = tmp('mm-hint-')
  const root = checkout(join(base, 'lib', 'node_modules', 'marshmello'))
  const globalBin = join(base, 'bin')
  mkdirSync(globalBin)
  symlinkSync(join(root, 'bin', 'marshmello'), join(globalBin, 'marshmello'))
  const script = join(root, 'bin', 'marshmello')
  const cwd = tmp('mm-hint-cwd-')
  t.same(invocation(src({ cwd, script, env: { PATH: `/usr/bin:${globalBin}` } })), { cwd, prefix: 'marshmello' })
  t.same(invocation(src({ cwd, script, env: { PATH: '/usr/bin' } })).prefix, script, 'not on PATH: its path')

  const other = checkout(join(tmp('mm-hint-'), 'other'))
  const otherBin = join(tmp('mm-hint-'), 'bin')
  mkdirSync(otherBin)
  symlinkSync(join(other, 'bin', 'marshmello'), join(otherBin, 'marshmello'))
  t.same(invocation(src({ cwd, script, env: { PATH: otherBin } })).prefix, script, 'a `marshmello` on PATH that is another copy does not count')

  /* a dependency of a project: node_modules/.bin, which only npm puts on PATH */
  const project = tmp('mm-hint-project-')
  const dep = checkout(join(project, 'node_modules', 'marshmello'))
  mkdirSync(join(project, 'node_modules', '.bin'))
  symlinkSync(join(dep, 'bin', 'marshmello'), join(project, 'node_modules', '.bin', 'marshmello'))
  const npmEnv = { PATH: `${join(project, 'node_modules', '.bin')}:/usr/bin`, npm_command: 'exec' }
  t.same(invocation(src({ cwd: project, script: join(dep, 'build', 'cli.js'), env: npmEnv })), { cwd: project, prefix: 'npx marshmello' }, 'npx in that project, not the PATH npm made')
})

t.test('the single executable: its path, or `marshmello` on PATH', async (t) => {
  const base = tmp('mm-hint-')
  mkdirSync(join(base, 'dist'))
  const exe = join(base, 'dist', 'marshmello')
  writeFileSync(exe, '')
  chmodSync(exe, 0o755)
  t.same(invocation(src({ cwd: base, sea: true, execPath: exe })), { cwd: base, prefix: './dist/marshmello' })
  const cwd = tmp('mm-hint-cwd-')
  t.same(invocation(src({ cwd, sea: true, execPath: exe })).prefix, exe)
  t.same(invocation(src({ cwd, sea: true, execPath: exe, env: { PATH: join(base, 'dist') } })).prefix, 'marshmello')
})

t.test('shell words', async (t) => {
  t.equal(shellQuote('/tmp/a-b_c.d/x'), '/tmp/a-b_c.d/x')
  t.equal(shellQuote('/tmp/with space'), "'/tmp/with space'")
  t.equal(shellQuote("it's"), "'it'\\''s'")
  t.equal(shellQuote('$(rm -rf ~)'), "'$(rm -rf ~)'")
  t.equal(dirArg('/home/u/mm/.devnet', '/home/u/mm'), '.devnet')
  t.equal(dirArg('/home/u/mm', '/home/u/mm'), '.')
  t.equal(dirArg('/tmp/net', '/home/u/mm'), '/tmp/net')
})
