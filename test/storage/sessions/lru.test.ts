// The lru session store's slabs (src/storage/sessions/lru.ts), white-box: values of
// every length round trip through slots or private copies, copies go in and out,
// a slot is freed exactly once whatever removes its entry, freed bytes are zero, and
// no size class holds more slots than maxEntries. The shared contract runs in
// test/storage/sessions.test.ts.

import t, { type Test } from 'tap'
import { lruSessionStore, slabStats } from '../../../src/storage/sessions/lru.js'
import type { SessionStore, SessionStoreInit } from '../../../src/storage/types.js'
import { sleep } from '../../helpers/wait.js'

/** `n` bytes, none zero, starting at `seed` (so a leftover byte shows) */
const filled = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => 1 + ((seed + i) % 255))

function open (t: Test, init: SessionStoreInit = { maxEntries: 100, ttlMs: 60_000 }): SessionStore {
  const s = lruSessionStore(init)
  t.teardown(() => s.close())
  return s
}

/** slots in use per size class: [64-byte, 256-byte] */
const inUse = (s: SessionStore) => slabStats(s).map(c => c.inUse)

/** nonzero bytes in a class's slabs */
function nonzero (s: SessionStore, cls: number): number {
  let n = 0
  for (const chunk of slabStats(s)[cls].raw) for (const b of chunk) if (b !== 0) n++
  return n
}

const contains = (s: SessionStore, cls: number, byte: number) =>
  slabStats(s)[cls].raw.some(chunk => chunk.includes(byte))

t.test('values of every length round trip', async t => {
  const s = open(t)
  const sizes = [0, 1, 63, 64, 65, 245, 256, 257, 4000]
  for (const n of sizes) await s.set(`v${n}`, filled(n, n))
  for (const n of sizes) t.same(await s.get(`v${n}`), filled(n, n), `${n} bytes`)
  t.same(inUse(s), [4, 3], '0..64 in 64-byte slots, 65..256 in 256-byte slots, longer values apart')
  t.equal(await s.size(), sizes.length)
})

t.test('get hands out copies, set keeps one', async t => {
  const s = open(t)
  for (const n of [10, 245, 1000]) {
    const v = filled(n)
    await s.set('a', v)
    v.fill(0) // the caller reuses its buffer
    const got = await s.get('a')
    t.same(got, filled(n), `${n} bytes: set copied`)
    got!.fill(7)
    t.same(await s.get('a'), filled(n), `${n} bytes: get copied`)
    t.not(await s.get('a'), await s.get('a'), 'a fresh array each time')
  }
})

t.test('a Buffer view into a larger buffer is stored as its own bytes', async t => {
  const s = open(t)
  const big = Buffer.from(filled(300))
  await s.set('a', big.subarray(10, 20))
  t.same(await s.get('a'), filled(300).subarray(10, 20))
})

t.test('replacing by another class frees the old slot once', async t => {
  const s = open(t)
  await s.set('a', filled(10))
  t.same(inUse(s), [1, 0])
  await s.set('a', filled(200))
  t.same(inUse(s), [0, 1], '64 → 256')
  t.equal(nonzero(s, 0), 0, 'the old slot was wiped')
  await s.set('a', filled(4000))
  t.same(inUse(s), [0, 0], '256 → private copy')
  t.equal(nonzero(s, 1), 0)
  await s.set('a', filled(5))
  t.same(inUse(s), [1, 0], 'private copy → 64')
  await s.set('b', filled(5))
  t.same(inUse(s), [2, 0], 'a freed slot is not handed out twice')
  t.same(await s.get('a'), filled(5))
  t.same(await s.get('b'), filled(5))
})

t.test('replacing within a class reuses the slot and wipes the old tail', async t => {
  const s = open(t)
  await s.set('a', filled(245))
  await s.set('a', filled(100, 9))
  t.same(inUse(s), [0, 1])
  t.equal(slabStats(s)[1].slots, 100, 'capped at maxEntries')
  t.equal(nonzero(s, 1), 100, 'nothing of the longer value is left')
  t.same(await s.get('a'), filled(100, 9))
  await s.set('a', filled(245, 3))
  t.same(await s.get('a'), filled(245, 3), 'and grows back')
})

t.test('eviction at maxEntries frees and wipes the oldest slot', async t => {
  const s = open(t, { maxEntries: 4, ttlMs: 60_000 })
  const marked = (i: number) => new Uint8Array(245).fill(0x10 + i)
  for (let i = 0; i < 4; i++) await s.set(`k${i}`, marked(i))
  await s.set('small', filled(10))
  t.equal(await s.get('k0'), undefined, 'the oldest is gone')
  t.same(inUse(s), [1, 3], 'its slot is free')
  t.notOk(contains(s, 1, 0x10), 'and zero')
  await s.set('k4', marked(4))
  t.equal(await s.get('k1'), undefined, 'the next oldest is gone')
  for (const i of [2, 3, 4]) t.same(await s.get(`k${i}`), marked(i))
  t.same(inUse(s), [1, 3])
  t.equal(slabStats(s)[1].slots, 4, 'no slot beyond maxEntries, even while evicting')
  t.equal(nonzero(s, 1), 3 * 245, 'only live bytes remain')
})

t.test('slots stay bounded by maxEntries under churn of mixed lengths', async t => {
  const s = open(t, { maxEntries: 10, ttlMs: 60_000 })
  for (let i = 0; i < 1000; i++) await s.set(`k${i % 37}`, filled([3, 64, 65, 245, 300][i % 5], i))
  for (const c of slabStats(s)) t.ok(c.slots <= 10, `${c.slotSize}-byte class: ${c.slots} slots`)
  t.equal(await s.size(), 10)
})

t.test('TTL expiry frees and wipes slots', async t => {
  const s = open(t, { maxEntries: 100, ttlMs: 100 })
  await s.set('a', filled(20))
  await s.set('b', filled(245))
  await s.set('c', filled(4000))
  await sleep(200)
  // the sweep (every ttlMs) or this get, whichever comes first, drops the entries
  t.equal(await s.get('a'), undefined, 'expired')
  t.equal(await s.size(), 0)
  t.same(inUse(s), [0, 0])
  t.equal(nonzero(s, 0) + nonzero(s, 1), 0, 'all wiped')
  await s.set('d', filled(245))
  t.same(inUse(s), [0, 1], 'a freed slot is reused')
  t.equal(slabStats(s)[1].slots, 100)
})

t.test('delete and close wipe; a closed store refuses', async t => {
  const s = lruSessionStore({ maxEntries: 10, ttlMs: 60_000 })
  await s.set('a', filled(30))
  await s.set('b', filled(245))
  await s.delete('a')
  t.same(inUse(s), [0, 1])
  t.equal(nonzero(s, 0), 0)
  await s.close()
  t.same(inUse(s), [0, 0])
  t.equal(nonzero(s, 1), 0, 'close wipes what was left')
  await t.rejects(s.get('b'), { code: 'MM_ERR_STORE_CLOSED' })
  await t.rejects(s.set('b', filled(1)), { code: 'MM_ERR_STORE_CLOSED' })
  await t.rejects(s.size(), { code: 'MM_ERR_STORE_CLOSED' })
  await s.close()
})

t.test('10,000 random operations agree with a least-recently-set model', async t => {
  const MAX = 100
  const s = open(t, { maxEntries: MAX, ttlMs: 60_000 })
  // xorshift32: the same sequence every run
  let seed = 0x9e3779b9
  const rand = (n: number) => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n }
  const lengths = [0, 1, 20, 63, 64, 65, 200, 245, 256, 257, 600]
  const randomValue = () => Uint8Array.from({ length: lengths[rand(lengths.length)] }, () => rand(4) === 0 ? 0 : rand(256))
  // a Map in the order of the last set: a set moves its key to the end (a get does not), the first is evicted
  const model = new Map<string, Uint8Array>()
  const touch = (k: string, v: Uint8Array) => { model.delete(k); model.set(k, v) }
  let mismatches = 0
  for (let i = 0; i < 10_000; i++) {
    const k = `k${rand(150)}`
    const op = rand(10)
    if (op < 5) {
      const v = randomValue()
      await s.set(k, v)
      touch(k, v)
      if (model.size > MAX) model.delete(model.keys().next().value!)
    } else if (op < 7) {
      await s.delete(k)
      model.delete(k)
    } else {
      const got = await s.get(k)
      const want = model.get(k)
      if (!(got === undefined ? want === undefined : want !== undefined && Buffer.from(got).equals(want))) mismatches++
    }
  }
  t.equal(mismatches, 0, 'every get agreed with the model')
  t.equal(await s.size(), model.size)
  for (const [k, v] of model) t.same(await s.get(k), v, k)
  const values = [...model.values()]
  const live = [values.filter(v => v.length <= 64), values.filter(v => v.length > 64 && v.length <= 256)]
  t.same(inUse(s), live.map(l => l.length), 'slots in use = live entries per class')
  for (const cls of [0, 1]) {
    const want = live[cls].reduce((n, v) => n + v.filter(b => b !== 0).length, 0)
    t.equal(nonzero(s, cls), want, `class ${cls}: no byte of a removed value is left`)
    t.ok(slabStats(s)[cls].slots <= MAX)
  }
})
