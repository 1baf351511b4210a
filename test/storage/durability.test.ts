// kill -9 durability of the embedded stores: a child writes records and prints an ack
// after each write resolves; we SIGKILL it mid-stream, reopen the file, and every
// acknowledged record must be there.

import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { sqliteUserStore } from '../../src/storage/users/sqlite.js'
import { nedbMessageStore } from '../../src/storage/messages/nedb.js'
import { tempDir } from './backends.js'

const FIXTURE = join(import.meta.dirname, 'fixtures', 'write-acks.ts')
const ROOT = join(import.meta.dirname, '..', '..')

/** runs the writer until it has acknowledged `atLeast` writes, SIGKILLs it, returns the acked indexes */
function writeThenKill (kind: string, path: string, atLeast: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, kind, path], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    const acks: number[] = []
    let buf = ''
    let stderr = ''
    child.stderr.on('data', d => { stderr += d })
    child.stdout.on('data', d => {
      buf += d
      const lines = buf.split('\n')
      buf = lines.pop()!
      for (const l of lines) if (l.startsWith('ack ')) acks.push(Number(l.slice(4)))
      if (acks.length >= atLeast && child.exitCode === null && !child.killed) child.kill('SIGKILL')
    })
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acks)
      else reject(new Error(`writer exited ${code}: ${stderr.split('\n')[0]}`))
    })
  })
}

t.test('sqlite: every acknowledged user survives kill -9', async t => {
  const path = join(tempDir(t), 'users.db')
  const acks = await writeThenKill('users', path, 300)
  t.ok(acks.length >= 300, `${acks.length} acks before the kill`)
  const s = sqliteUserStore({ path })
  t.teardown(() => s.close())
  const missing = []
  for (const i of acks) if ((await s.get(`user${i}`))?.passwordHash !== `hash${i}`) missing.push(i)
  t.same(missing, [], 'no acknowledged user lost')
})

t.test('nedb: every acknowledged message survives kill -9', async t => {
  const path = join(tempDir(t), 'messages.db')
  const acks = await writeThenKill('messages', path, 300)
  t.ok(acks.length >= 300, `${acks.length} acks before the kill`)
  const s = await nedbMessageStore({ path })
  t.teardown(() => s.close())
  const stored = new Set<string>()
  for await (const m of s.all()) stored.add(m.clientId)
  const missing = acks.filter(i => !stored.has(`c${i}`))
  t.same(missing, [], 'no acknowledged message lost')
  t.ok(stored.size >= acks.length)
})
