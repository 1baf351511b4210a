// ExpiringTable (the final hop's circuit table): a get or set is a use, the least
// recently used entry is evicted when full, entries expire ttlMs after their last use,
// and every value that leaves is disposed of exactly once. A fake clock drives time.

import t from 'tap'
import { ExpiringTable } from '../../../src/roles/common/expiring-table.js'

function table (max = 3, ttlMs = 100) {
  let clock = 0
  const disposed: string[] = []
  const tbl = new ExpiringTable<string>({ max, ttlMs, dispose: (v) => { disposed.push(v) }, now: () => clock })
  return { tbl, disposed, tick: (ms: number) => { clock += ms } }
}

t.test('full: the least recently used entry goes, and a get counts as a use', async t => {
  const { tbl, disposed } = table(3)
  tbl.set('a', 'A').set('b', 'B').set('c', 'C')
  t.equal(tbl.get('a'), 'A') // a is now the most recent
  tbl.set('d', 'D')
  t.same(disposed, ['B'], 'b was the least recently used')
  t.same([...tbl.keys()], ['c', 'a', 'd'])
  t.equal(tbl.size, 3)
})

t.test('entries expire ttlMs after their last use', async t => {
  const { tbl, disposed, tick } = table(10, 100)
  tbl.set('a', 'A').set('b', 'B')
  tick(60)
  t.equal(tbl.get('a'), 'A', 'used at 60')
  tick(60)
  t.equal(tbl.get('b'), undefined, 'b: 120 ms since its last use')
  t.equal(tbl.get('a'), 'A', 'a: 60 ms since its last use')
  t.same(disposed, ['B'])
  tbl.set('c', 'C')
  tick(101)
  t.equal(tbl.purge(), 2, 'purge drops both expired entries')
  t.equal(tbl.size, 0)
  t.same(disposed, ['B', 'A', 'C'])
})

t.test('replace, delete and clear dispose exactly once', async t => {
  const { tbl, disposed } = table(5)
  tbl.set('a', 'A1')
  tbl.set('a', 'A1')
  t.same(disposed, [], 'setting the same value again disposes nothing')
  tbl.set('a', 'A2')
  t.same(disposed, ['A1'], 'a replaced value is disposed')
  t.equal(tbl.delete('a'), true)
  t.equal(tbl.delete('a'), false, 'a second delete finds nothing')
  t.same(disposed, ['A1', 'A2'])
  tbl.set('x', 'X').set('y', 'Y')
  tbl.clear()
  t.same(disposed, ['A1', 'A2', 'X', 'Y'])
  t.equal(tbl.size, 0)
  tbl.set('z', 'Z')
  t.equal(tbl.get('z'), 'Z', 'usable after clear')
})

t.test('bad bounds are refused', async t => {
  t.throws(() => new ExpiringTable({ max: 0, ttlMs: 1 }), RangeError)
  t.throws(() => new ExpiringTable({ max: 1, ttlMs: 0 }), RangeError)
})
