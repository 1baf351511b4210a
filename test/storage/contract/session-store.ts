// The SessionStore contract: every implementation (lru, Redis) must pass it.
// `factory` opens a fresh, empty store with the given bounds each time it is called;
// the suite closes what it opens.

import type { Test } from 'tap'
import type { SessionStore, SessionStoreInit } from '../../../src/storage/types.js'
import { sleep } from '../../helpers/wait.js'

export interface SessionContractOptions {
  /** how many sessions to insert into a store bounded at `bound` */
  inserts: number
  bound: number
}

const bytes = (...b: number[]) => Uint8Array.from(b)

export function sessionStoreContract (
  t: Test,
  name: string,
  factory: (init: SessionStoreInit) => Promise<SessionStore>,
  opts: SessionContractOptions = { inserts: 200_000, bound: 100_000 }
): void {
  t.test(`${name}: round trip, replace, delete`, async t => {
    const s = await factory({ maxEntries: 10, ttlMs: 60_000 })
    t.teardown(() => s.close())
    t.equal(await s.get('nope'), undefined)
    const v = bytes(1, 2, 3, 0, 255)
    await s.set('a', v)
    v[0] = 9 // the store kept its own copy
    t.same(await s.get('a'), bytes(1, 2, 3, 0, 255))
    const got = await s.get('a')
    got!.fill(0) // and hands out copies
    t.same(await s.get('a'), bytes(1, 2, 3, 0, 255))
    await s.set('a', bytes(7))
    t.same(await s.get('a'), bytes(7))
    await s.set('b', new Uint8Array(0))
    t.same(await s.get('b'), new Uint8Array(0), 'empty value is a value')
    t.equal(await s.size(), 2)
    await s.delete('a')
    await s.delete('never-there')
    t.equal(await s.get('a'), undefined)
    t.equal(await s.size(), 1)
  })

  t.test(`${name}: create writes only an absent id, and one of racing creates wins`, async t => {
    const s = await factory({ maxEntries: 50, ttlMs: 60_000 })
    t.teardown(() => s.close())
    t.equal(await s.create('c', bytes(1)), true, 'absent: created')
    t.equal(await s.create('c', bytes(2)), false, 'present: refused')
    t.same(await s.get('c'), bytes(1), 'and the first value kept')
    await s.delete('c')
    t.equal(await s.create('c', bytes(3)), true, 'free again after delete')
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => s.create('race', bytes(i))))
    t.equal(wins.filter(Boolean).length, 1, 'ten creates of one id at once: exactly one wins')
    t.same(await s.get('race'), bytes(wins.indexOf(true)), 'the winner\'s value is stored')
    t.equal(await s.size(), 2)
  })

  t.test(`${name}: bounded at maxEntries, oldest evicted`, async t => {
    const { inserts, bound } = opts
    const s = await factory({ maxEntries: bound, ttlMs: 60_000 })
    t.teardown(() => s.close())
    let max = 0
    const step = Math.max(1, Math.floor(bound / 10))
    for (let i = 0; i < inserts; i++) {
      await s.set(`s${i}`, bytes(i & 255, (i >> 8) & 255, (i >> 16) & 255))
      if (i % step === 0) max = Math.max(max, await s.size())
    }
    max = Math.max(max, await s.size())
    t.ok(max <= bound, `size never exceeded ${bound} (max seen ${max})`)
    t.equal(await s.size(), bound, 'full after overfilling')
    t.equal(await s.get('s0'), undefined, 'the first inserted is gone')
    const last = inserts - 1
    t.same(await s.get(`s${last}`), bytes(last & 255, (last >> 8) & 255, (last >> 16) & 255), 'the newest is kept')
  })

  t.test(`${name}: entries expire after ttlMs; set refreshes the ttl`, async t => {
    const s = await factory({ maxEntries: 100, ttlMs: 300 })
    t.teardown(() => s.close())
    await s.set('short', bytes(1))
    await s.set('kept', bytes(2))
    await sleep(200)
    await s.set('kept', bytes(3))
    await sleep(200)
    t.equal(await s.get('short'), undefined, 'expired 400 ms after its set')
    t.same(await s.get('kept'), bytes(3), 'refreshed 200 ms ago')
    t.equal(await s.size(), 1, 'size counts live entries only')
    await sleep(400)
    t.equal(await s.get('kept'), undefined)
    t.equal(await s.size(), 0)
  })
  t.test(`${name}: versions and compare-and-set; a stale copy written back is refused`, async t => {
    const s = await factory({ maxEntries: 50, ttlMs: 60_000 })
    t.teardown(() => s.close())
    t.equal(await s.getVersioned('v'), undefined)
    t.equal(await s.compareAndSet('v', bytes(9), 5), 0, 'absent: only expected 0 writes')
    const v1 = await s.compareAndSet('v', bytes(1), 0)
    t.ok(v1 > 0, 'absent + expected 0: written, a version returned')
    t.same(await s.getVersioned('v'), { value: bytes(1), version: v1 })
    t.equal(await s.compareAndSet('v', bytes(2), 0), 0, 'present: expected 0 refused')
    const v2 = await s.compareAndSet('v', bytes(2), v1)
    t.ok(v2 > v1, 'the current version: written, the version grows')
    t.equal(await s.compareAndSet('v', bytes(1), v1), 0, 'the old record written back (its old version): refused')
    t.same(await s.getVersioned('v'), { value: bytes(2), version: v2 }, 'and nothing changed')
    await s.set('v', bytes(3))
    const v3 = (await s.getVersioned('v'))!.version
    t.ok(v3 > v2, 'set() stamps a new version too')
    t.equal(await s.compareAndSet('v', bytes(4), v2), 0, 'a copy read before that set is stale')
    t.ok(await s.create('w', bytes(5)))
    t.ok((await s.getVersioned('w'))!.version > v3, 'versions are store-wide: another id never repeats one')
    await s.delete('v')
    t.equal(await s.compareAndSet('v', bytes(6), v3), 0, 'deleted: its last version no longer writes')
    const again = await s.compareAndSet('v', bytes(7), 0)
    t.ok(again > v3, 'written anew, under a version never used before')

    // racing writers on one record: each reads, then writes at what it read; of every round one wins
    await s.set('r', bytes(0))
    const won: number[] = []
    for (let round = 0; round < 5; round++) {
      const seen = await Promise.all([0, 1, 2, 3].map(() => s.getVersioned('r')))
      const results = await Promise.all(seen.map((r, i) => s.compareAndSet('r', bytes(round, i), r!.version)))
      t.equal(results.filter((n) => n > 0).length, 1, `round ${round}: four writers at one version, exactly one wins`)
      won.push(results.findIndex((n) => n > 0))
    }
    t.same(await s.get('r'), bytes(4, won[4]), 'the last winner\'s value is stored')
  })
}
