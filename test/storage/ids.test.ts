// Message ids: fixed length, unique, sorted in creation order even when the clock
// stalls or steps back; and no Math.random anywhere in src/storage.

import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { MESSAGE_ID_LENGTH, idFloor, messageId } from '../../src/storage/ids.js'

t.test('ids sort in creation order, within a ms and across clock steps back', async t => {
  const base = Date.now()
  const clock = [base, base, base, base + 5, base + 1, base - 1000, base + 6]
  const ids: string[] = []
  for (let i = 0; i < 20_000; i++) ids.push(messageId(clock[i % clock.length] + Math.floor(i / 1000)))
  t.ok(ids.every(id => id.length === MESSAGE_ID_LENGTH && /^[0-9a-z]+$/.test(id)), 'fixed-length base36')
  t.equal(new Set(ids).size, ids.length, 'unique')
  t.ok(ids.every((id, i) => i === 0 || ids[i - 1] < id), 'strictly increasing')
})

t.test('idFloor is below every later id and above every earlier one', async t => {
  const now = Date.now() + 10_000
  t.ok(idFloor(now) < messageId(now))
  t.ok(idFloor(now + 60_000) > messageId(now))
})

t.test('no Math.random in src/storage', async t => {
  const files: string[] = []
  const walk = (d: string) => { for (const f of readdirSync(d)) { const p = join(d, f); if (statSync(p).isDirectory()) walk(p); else files.push(p) } }
  walk(join(import.meta.dirname, '../../src/storage'))
  t.ok(files.length >= 10)
  for (const f of files) t.notMatch(readFileSync(f, 'utf8'), /Math\.random/, f)
})
