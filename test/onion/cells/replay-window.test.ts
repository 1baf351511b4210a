// ReplayWindow (docs/PROTOCOL.md §4): each counter accepted once, any order within
// WINDOW of the highest, stale and replayed counters refused; check() never changes
// state; the serialised form round-trips and malformed records are refused (P6, P9).
import t from 'tap'
import { ReplayWindow, WINDOW } from '../../../src/onion/cells/replay-window.js'
import { codeOf } from '../helpers.js'

/** check + commit, as LayerOpener does */
const accept = (w: ReplayWindow, c: bigint): boolean => {
  if (!w.check(c)) return false
  w.commit(c)
  return true
}

t.test('counter 0 is never valid; counters start at 1', async t => {
  const w = new ReplayWindow()
  t.equal(w.check(0n), false)
  t.equal(accept(w, 1n), true)
  t.equal(w.top, 1n)
})

t.test('a replay is refused and check() alone changes nothing', async t => {
  const w = new ReplayWindow()
  t.equal(w.check(5n), true)
  t.equal(w.check(5n), true, 'check without commit does not consume the counter')
  const before = w.serialize()
  w.check(3n); w.check(10_000n)
  t.same(w.serialize(), before, 'check() leaves the state as it was')
  t.equal(accept(w, 5n), true)
  t.equal(accept(w, 5n), false, 'replay of the top counter')
  for (let c = 1n; c <= 4n; c++) t.equal(accept(w, c), true, `older ${c} accepted once`)
  for (let c = 1n; c <= 5n; c++) t.equal(w.check(c), false, `${c} now refused`)
})

t.test('out of order within the window: each accepted exactly once', async t => {
  const w = new ReplayWindow()
  // a fixed permutation of 1..3000 with local disorder of up to 300
  const order: bigint[] = []
  for (let base = 0; base < 3000; base += 300) for (let i = 299; i >= 0; i--) order.push(BigInt(base + i + 1))
  const firsts = order.map((c) => accept(w, c))
  t.ok(firsts.every(Boolean), 'every first delivery accepted')
  const seconds = order.slice(-WINDOW).map((c) => accept(w, c))
  t.ok(seconds.every((x) => !x), 'every second delivery refused')
  t.equal(w.top, 3000n)
})

t.test('window edge: top-(WINDOW-1) accepted, top-WINDOW stale', async t => {
  const w = new ReplayWindow()
  accept(w, 5000n)
  t.equal(w.check(5000n - BigInt(WINDOW)), false, 'exactly WINDOW behind is stale')
  t.equal(w.check(5000n - BigInt(WINDOW) - 1000n), false, 'far behind is stale')
  t.equal(accept(w, 5000n - BigInt(WINDOW - 1)), true, 'WINDOW-1 behind is still in the window')
  t.equal(accept(w, 5000n - BigInt(WINDOW - 1)), false)
})

t.test('bits survive shifts of every size (word and bit boundaries)', async t => {
  for (const jump of [1, 2, 31, 32, 33, 63, 64, 65, 500, WINDOW - 1]) {
    const w = new ReplayWindow()
    for (const c of [100n, 98n, 70n, 69n]) accept(w, c)
    accept(w, 100n + BigInt(jump))
    const seen = [100n, 98n, 70n, 69n].filter((c) => 100n + BigInt(jump) - c < BigInt(WINDOW))
    t.ok(seen.every((c) => !w.check(c)), `jump ${jump}: seen counters still refused`)
    const unseen = [99n, 97n, 71n, 68n].filter((c) => 100n + BigInt(jump) - c < BigInt(WINDOW))
    t.ok(unseen.every((c) => w.check(c)), `jump ${jump}: unseen counters still accepted`)
  }
})

t.test('large jumps clear the window; near 2^64', async t => {
  const w = new ReplayWindow()
  for (let c = 1n; c <= 10n; c++) accept(w, c)
  t.equal(accept(w, 1n << 40n), true)
  t.equal(w.check(10n), false, 'everything before the jump is now stale')
  t.equal(w.check((1n << 40n) - 1n), true, 'just below the new top is fresh')
  const max = (1n << 64n) - 1n
  t.equal(accept(w, max), true)
  t.equal(accept(w, max), false)
  t.equal(accept(w, max - 1n), true)
})

t.test('serialize / deserialize round trip is exact and keeps behaviour', async t => {
  const w = new ReplayWindow()
  for (const c of [1n, 3n, 40n, 33n, 700n, 1400n, 1399n, 1000n]) accept(w, c)
  const rec = w.serialize()
  t.equal(rec.length, ReplayWindow.SERIALIZED)
  t.equal(rec.length, 8 + WINDOW / 8)
  t.equal(rec.readBigUInt64BE(0), 1400n, 'top first, u64 BE')
  const w2 = ReplayWindow.deserialize(rec)
  t.same(w2.serialize(), rec, 'identical bytes')
  const disagree: bigint[] = []
  for (let c = 300n; c <= 1500n; c++) if (w2.check(c) !== w.check(c)) disagree.push(c)
  t.same(disagree, [], 'check() agrees on every counter from 300 to 1500')
  // bit layout: counter top-i is bit i of the little-endian u32 word i/32 (§4)
  t.equal(rec[8] & 1, 1, 'top itself is bit 0')
  t.equal(rec[8] & 2, 2, '1399 = top-1 is bit 1')
  t.equal((rec[8 + (400 >> 3)] >> (400 & 7)) & 1, 1, '1000 = top-400 is bit 400')
})

t.test('deserialize refuses truncated and oversized records with MM_ERR_LENGTH', async t => {
  const rec = new ReplayWindow().serialize()
  const bad: string[] = []
  for (let n = 0; n < rec.length; n++) {
    const c = codeOf(() => ReplayWindow.deserialize(rec.subarray(0, n)))
    if (c !== 'MM_ERR_LENGTH') bad.push(`${n}:${c}`)
  }
  t.same(bad, [], 'every truncation refused')
  t.equal(codeOf(() => ReplayWindow.deserialize(Buffer.concat([rec, Buffer.alloc(1)]))), 'MM_ERR_LENGTH')
})
