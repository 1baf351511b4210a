// One process per signed-in profile (src/roles/client/profile/lock.ts): a second login in
// this process or another live one is refused with MM_ERR_PROFILE_BUSY naming the holder;
// a lock left by a process that died is taken over; logout and process exit release it.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LOCK_FILE, acquireProfileLock } from '../../../../src/roles/client/profile/lock.js'
import { profileDir } from '../../../../src/roles/client/profile/files.js'
import { ROOT, tmp } from '../../../helpers/net.js'

const home = () => {
  const h = tmp('mm-lock-')
  mkdirSync(profileDir(h, 'alice'), { recursive: true })
  return h
}

t.test('in one process: the second take is refused until the first is released', async (t) => {
  const h = home()
  const lock = acquireProfileLock(h, 'alice')
  const file = join(profileDir(h, 'alice'), LOCK_FILE)
  t.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid, 'the lock names this process')
  t.throws(() => acquireProfileLock(h, 'alice'), { code: 'MM_ERR_PROFILE_BUSY', message: /already in this program/ })
  mkdirSync(profileDir(h, 'bob'), { recursive: true })
  acquireProfileLock(h, 'bob').release() // another profile in the same home is its own lock
  lock.release()
  t.notOk(existsSync(file), 'released: the file is gone')
  acquireProfileLock(h, 'alice').release()
  lock.release() // a second release is harmless, and does not drop another holder's lock
})

t.test('a live process holding it: refused with its pid; a dead one: taken over', async (t) => {
  const h = home()
  const file = join(profileDir(h, 'alice'), LOCK_FILE)
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
  t.teardown(() => { holder.kill('SIGKILL') })
  writeFileSync(file, JSON.stringify({ pid: holder.pid, nonce: 'theirs' }))
  t.throws(() => acquireProfileLock(h, 'alice'), { code: 'MM_ERR_PROFILE_BUSY', message: new RegExp(`another marshmello process \\(pid ${holder.pid}\\)`) })
  t.equal(JSON.parse(readFileSync(file, 'utf8')).nonce, 'theirs', 'the holder\'s lock is left alone')
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  writeFileSync(file, JSON.stringify({ pid: Number(dead.stdout), nonce: 'crashed' }))
  const lock = acquireProfileLock(h, 'alice')
  t.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid, 'a lock whose process is gone is taken over')
  lock.release()
  writeFileSync(file, 'half-writ')
  acquireProfileLock(h, 'alice').release()
  t.pass('an unreadable lock file is stale too')
})

t.test('a process that exits without logging out releases it', async (t) => {
  const h = home()
  const script = `import('${join(ROOT, 'src/roles/client/profile/lock.ts')}').then((m) => { m.acquireProfileLock(${JSON.stringify(h)}, 'alice'); process.exit(0) })`
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.notOk(existsSync(join(profileDir(h, 'alice'), LOCK_FILE)), 'the exit hook removed the lock')
})
