// The bounded helpers of src/roles/common/limits.ts: token buckets refill at their rate
// on an injected clock; the keyed queue runs one key's tasks in order and keys apart,
// says when a key is full, counts waiting bytes per source, drops a key's waiting tasks
// (their promises still settle) and lists keys by the age of their oldest waiting task
// (the relay's memory budget, docs/PROTOCOL.md §5.5).
import t from 'tap'
import { KeyedQueue, TokenBuckets } from '../../../src/roles/common/limits.js'

t.test('token buckets: a burst, then the rate, on the injected clock', async (t) => {
  let now = 0
  const b = new TokenBuckets(2, 3, 10, () => now)
  t.same([b.take('a'), b.take('a'), b.take('a'), b.take('a')], [true, true, true, false], 'burst 3')
  t.ok(b.take('b'), 'another key has its own bucket')
  now = 500
  t.same([b.take('a'), b.take('a')], [true, false], '2/s: one token in 500 ms')
  now = 10_000
  t.same([b.take('a'), b.take('a'), b.take('a'), b.take('a')], [true, true, true, false], 'never more than the burst')
})

t.test('keyed queue: order per key, caps, bytes, clear, age', async (t) => {
  const bytes = new Map<string, number>()
  const q = new KeyedQueue({ maxPerKey: 3, onBytes: (s, d) => bytes.set(s ?? '-', (bytes.get(s ?? '-') ?? 0) + d) })
  const ran: string[] = []
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const first = q.run('k', async () => { ran.push('k1'); await gate }, () => {})
  const done = [2, 3, 4].map((i) => q.run('k', () => { ran.push(`k${i}`) }, () => {}, { bytes: 10, source: 'ch' }))
  void q.run('j', () => { ran.push('j1') }, () => {}, { bytes: 7, source: 'other' })
  t.same(ran, [], 'nothing runs inside run()')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(ran, ['k1', 'j1'], 'keys run apart; k waits behind its first task')
  t.same([q.waiting('k'), q.full('k'), q.bytes, bytes.get('ch')], [3, true, 30, 30], 'three waiting: full at maxPerKey, their bytes counted')
  t.same(q.byAge().map((l) => [l.key, l.bytes]), [['k', 30]], 'the keys with bytes waiting, oldest first')
  t.equal(q.clear('k'), 3, 'clear drops the waiting tasks')
  await Promise.all(done)
  t.same([q.bytes, bytes.get('ch'), bytes.get('other')], [0, 0, 0], 'their bytes are released')
  release()
  await first
  t.same(ran, ['k1', 'j1'], 'cleared tasks never ran (their promises settled)')
  const errs: unknown[] = []
  await q.run('e', () => { throw new Error('boom') }, (e) => errs.push(e))
  await q.run('e', () => { ran.push('after') }, () => {})
  t.equal(errs.length, 1, 'an error goes to onError')
  t.equal(ran.at(-1), 'after', 'and the key goes on')
  t.equal(q.size, 0, 'idle keys are forgotten')
})
