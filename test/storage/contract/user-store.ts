// The UserStore contract: every implementation (SQLite, PostgreSQL) must pass it.
// `factory` opens a fresh, empty store each time it is called; the suite closes it.

import type { Test } from 'tap'
import type { UserStore } from '../../../src/storage/types.js'

const keys = (n: number) => ({ enc: Buffer.alloc(32, n).toString('base64'), sign: Buffer.alloc(32, n + 1).toString('base64') })
const hash = 'scrypt$16384$8$1$c2FsdA==$aGFzaA=='

export function userStoreContract (t: Test, name: string, factory: () => Promise<UserStore>): void {
  t.test(`${name}: create and get, case-insensitive`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    t.equal(await s.count(), 0)
    const before = Date.now()
    const rec = await s.create({ username: 'alice', passwordHash: hash, keys: null })
    t.equal(rec.username, 'alice')
    t.ok(rec.createdAt >= before && rec.createdAt <= Date.now(), 'createdAt is now')
    const got = await s.get('ALICE')
    t.same(got, { username: 'alice', passwordHash: hash, keys: null, createdAt: rec.createdAt })
    t.equal(await s.get('bob'), undefined)
    await s.create({ username: 'bob_2-x', passwordHash: hash, keys: keys(1) })
    t.same((await s.get('bob_2-x'))?.keys, keys(1))
    t.equal(await s.count(), 2)
  })

  t.test(`${name}: usernames are unique regardless of case`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    await s.create({ username: 'carol', passwordHash: hash, keys: null })
    for (const username of ['carol', 'Carol', 'CAROL']) {
      await t.rejects(s.create({ username, passwordHash: 'other', keys: null }),
        { code: 'MM_ERR_USER_EXISTS', statusCode: 409 }, username)
    }
    t.equal(await s.count(), 1)
    t.equal((await s.get('carol'))?.passwordHash, hash, 'the first registration is untouched')
  })

  t.test(`${name}: setKeys`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    await s.create({ username: 'dave', passwordHash: hash, keys: null })
    await s.setKeys('Dave', keys(5))
    t.same((await s.get('dave'))?.keys, keys(5))
    await s.setKeys('dave', keys(7))
    t.same((await s.get('dave'))?.keys, keys(7), 'replaced')
    await t.rejects(s.setKeys('nobody', keys(1)), { code: 'MM_ERR_USER_UNKNOWN', statusCode: 404 })
  })

  t.test(`${name}: sealed-sender access (a verifier and the strangers switch)`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    await s.create({ username: 'dora', passwordHash: hash, keys: null })
    t.same(await s.getSealedAccess('DORA'), { verifier: null, allowStrangers: true }, 'strangers allowed, no verifier, until set')
    t.equal(await s.getSealedAccess('nobody'), undefined)
    const verifier = Buffer.alloc(32, 7).toString('base64')
    await s.setSealedAccess('dora', { verifier, allowStrangers: false })
    t.same(await s.getSealedAccess('dora'), { verifier, allowStrangers: false })
    await t.rejects(s.setSealedAccess('nobody', { verifier, allowStrangers: true }), { code: 'MM_ERR_USER_UNKNOWN' })
  })

  t.test(`${name}: token revocation and purge`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    t.equal(await s.isTokenRevoked('jti-1'), false)
    await s.revokeToken('jti-1', 1_000)
    await s.revokeToken('jti-2', 2_000)
    await s.revokeToken('jti-1', 1_000) // logging out twice is fine
    t.equal(await s.isTokenRevoked('jti-1'), true)
    t.equal(await s.isTokenRevoked('jti-2'), true)
    t.equal(await s.isTokenRevoked('jti-3'), false)
    await s.purgeRevoked(999)
    t.equal(await s.isTokenRevoked('jti-1'), true, 'kept until its expiry')
    await s.purgeRevoked(1_000)
    t.equal(await s.isTokenRevoked('jti-1'), false, 'purged at its expiry')
    t.equal(await s.isTokenRevoked('jti-2'), true)
  })

  t.test(`${name}: all() yields every user ordered by username, across pages`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const names: string[] = []
    for (let i = 0; i < 1_100; i++) names.push(`u${String((i * 7919) % 1_100).padStart(4, '0')}`)
    for (const username of names) await s.create({ username, passwordHash: hash, keys: null })
    const seen: string[] = []
    for await (const u of s.all()) seen.push(u.username)
    t.same(seen, [...names].sort())
    t.equal(await s.count(), 1_100)
  })

  t.test(`${name}: prekeys: upload, counts, claims hand each one-time key out once, last resort after`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    await s.create({ username: 'pq', passwordHash: hash, keys: keys(1) })
    t.same(await s.prekeyCounts('pq'), { oneTime: 0, oneTimeKem: 0, signedPrekeyId: undefined, lastResortId: undefined })
    t.equal(await s.claimPrekeys('pq'), undefined, 'nothing published: no bundle')
    await s.addPrekeys('PQ', {
      signedPrekey: { id: 1, key: 'spk1', signature: 'sig-spk1' },
      lastResortKem: { id: 100, key: 'lr', signature: 'sig-lr' },
      oneTime: [{ id: 5, key: 'ec5' }, { id: 6, key: 'ec6' }],
      oneTimeKem: [{ id: 7, key: 'kem7', signature: 'sig7' }]
    })
    t.same(await s.prekeyCounts('pq'), { oneTime: 2, oneTimeKem: 1, signedPrekeyId: 1, lastResortId: 100 })
    t.same(await s.claimPrekeys('pq', { oneTime: false }), {
      signedPrekey: { id: 1, key: 'spk1', signature: 'sig-spk1' },
      kemPrekey: { id: 100, key: 'lr', signature: 'sig-lr', lastResort: true }
    }, 'oneTime: false (the per-name budget spent): the last-resort bundle, no one-time key taken')
    t.same(await s.prekeyCounts('pq'), { oneTime: 2, oneTimeKem: 1, signedPrekeyId: 1, lastResortId: 100 })
    t.same(await s.claimPrekeys('pq'), {
      signedPrekey: { id: 1, key: 'spk1', signature: 'sig-spk1' },
      kemPrekey: { id: 7, key: 'kem7', signature: 'sig7', lastResort: false },
      oneTimePrekey: { id: 5, key: 'ec5' }
    })
    t.same(await s.claimPrekeys('pq'), {
      signedPrekey: { id: 1, key: 'spk1', signature: 'sig-spk1' },
      kemPrekey: { id: 100, key: 'lr', signature: 'sig-lr', lastResort: true },
      oneTimePrekey: { id: 6, key: 'ec6' }
    }, 'no one-time KEM key left: the last-resort one')
    t.same(await s.claimPrekeys('pq'), {
      signedPrekey: { id: 1, key: 'spk1', signature: 'sig-spk1' },
      kemPrekey: { id: 100, key: 'lr', signature: 'sig-lr', lastResort: true }
    }, 'no one-time X25519 key left: none')
    await t.rejects(s.addPrekeys('pq', { oneTime: [{ id: 8, key: 'a' }, { id: 8, key: 'b' }] }), { code: 'MM_ERR_BAD_PREKEY' }, 'a repeated id')
    t.equal((await s.prekeyCounts('pq')).oneTime, 0, 'a refused upload stores nothing (one transaction)')
    await s.addPrekeys('pq', { signedPrekey: { id: 2, key: 'spk2', signature: 'sig-spk2' }, oneTime: [{ id: 9, key: 'ec9' }] })
    t.equal((await s.claimPrekeys('pq'))?.signedPrekey.id, 2, 'the signed prekey is replaced')
    await s.addPrekeys('pq', { oneTime: [{ id: 10, key: 'ec10' }] })
    await s.setKeys('pq', keys(2))
    t.same(await s.prekeyCounts('pq'), { oneTime: 0, oneTimeKem: 0, signedPrekeyId: undefined, lastResortId: undefined }, 'new identity keys drop the old prekeys')
    await t.rejects(s.addPrekeys('nobody', { oneTime: [] }), { code: 'MM_ERR_USER_UNKNOWN' })
    await t.rejects(s.claimPrekeys('nobody'), { code: 'MM_ERR_USER_UNKNOWN' })
  })

  t.test(`${name}: prekeys: concurrent claims never get the same one-time key`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    await s.create({ username: 'busy', passwordHash: hash, keys: keys(1) })
    const ids = Array.from({ length: 20 }, (_, i) => i + 1)
    await s.addPrekeys('busy', {
      signedPrekey: { id: 1, key: 'spk', signature: 'sig' },
      lastResortKem: { id: 999, key: 'lr', signature: 'sig' },
      oneTime: ids.map(id => ({ id, key: `ec${id}` })),
      oneTimeKem: ids.map(id => ({ id, key: `kem${id}`, signature: 'sig' }))
    })
    const claims = await Promise.all(Array.from({ length: 30 }, () => s.claimPrekeys('busy')))
    const kem = claims.filter(c => !c!.kemPrekey.lastResort).map(c => c!.kemPrekey.id).sort((a, b) => a - b)
    const ec = claims.map(c => c!.oneTimePrekey?.id).filter((id): id is number => id !== undefined).sort((a, b) => a - b)
    t.same(kem, ids, 'each one-time ML-KEM key exactly once')
    t.same(ec, ids, 'each one-time X25519 key exactly once')
    t.equal(claims.filter(c => c!.kemPrekey.lastResort).length, 10, 'the other claims get the last-resort key')
    t.same(await s.prekeyCounts('busy'), { oneTime: 0, oneTimeKem: 0, signedPrekeyId: 1, lastResortId: 999 })
  })
}
