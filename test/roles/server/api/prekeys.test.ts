// PQXDH prekeys on the server (docs/PROTOCOL.md §11.2): uploads checked against the
// account's identity keys (a prekey its owner did not sign, a wrong length, a repeated id,
// a batch over its bound are refused with MM_ERR_BAD_PREKEY), claims without any token,
// each one-time key handed out once even under concurrent claims through the gateway, the
// last-resort key after, one-time keys metered per name (a drainer gets the burst, then the
// last-resort key), and a bundle that PQXDH accepts end to end.
import t from 'tap'
import { ed25519PublicFromPrivate, randomBytes, x25519PublicFromPrivate } from '../../../../src/onion/crypto/primitives.js'
import { mlkemKeyPair } from '../../../../src/onion/crypto/mlkem.js'
import { pqxdhInitiate, signPrekey, type IdentityPrivate } from '../../../../src/onion/crypto/pqxdh.js'
import { MAX_STORED_ONE_TIME, ONE_TIME_PER_NAME } from '../../../../src/roles/server/api/prekeys.js'
import { PASSWORD, call, clockedStack, gw, stack } from './helpers.js'

function identity (): IdentityPrivate {
  const dhPrivate = randomBytes(32)
  const sigPrivate = randomBytes(32)
  return { dhPrivate, sigPrivate, dh: x25519PublicFromPrivate(dhPrivate), sig: ed25519PublicFromPrivate(sigPrivate) }
}
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')
const signed = (me: IdentityPrivate, kind: 'signed' | 'kem-last-resort' | 'kem-one-time', id: number, key: Buffer) => ({ id, key: b64(key), signature: b64(signPrekey(me, kind, id, key)) })
const kemKey = () => mlkemKeyPair().publicKey
const ecKey = () => x25519PublicFromPrivate(randomBytes(32))

async function account (gateway: Parameters<typeof call>[0], name: string, me: IdentityPrivate): Promise<string> {
  const keys = { enc: b64(me.dh), sign: b64(me.sig) }
  t.equal((await call(gateway, 'POST', '/v1/auth/register', { body: { username: name, password: PASSWORD, keys } })).status, 201)
  return (await call(gateway, 'POST', '/v1/auth/login', { body: { username: name, password: PASSWORD } })).json.token
}

t.test('upload, claim without a token, each one-time key once, then the last-resort key', async t => {
  const { gateway } = await stack(t)
  const bob = identity()
  const token = await account(gateway, 'bob', bob)
  const spk = ecKey()
  const lr = kemKey()
  const body = {
    signedPrekey: signed(bob, 'signed', 1, spk),
    lastResortKem: signed(bob, 'kem-last-resort', 2, lr),
    oneTime: [10, 11].map(id => ({ id, key: b64(ecKey()) })),
    oneTimeKem: [20, 21].map(id => signed(bob, 'kem-one-time', id, kemKey()))
  }
  const up = await call(gateway, 'PUT', '/v1/users/me/prekeys', { token, body })
  t.equal(up.status, 200, up.raw)
  t.same(up.json, { oneTime: 2, oneTimeKem: 2, signedPrekeyId: 1, lastResortId: 2 })
  t.equal((await call(gateway, 'PUT', '/v1/users/me/prekeys', { body })).json.error.code, 'MM_ERR_TOKEN', 'uploading needs the owner\'s token')

  const c1 = await call(gateway, 'POST', '/v1/users/Bob/prekeys/claim')
  t.equal(c1.status, 200, 'a claim needs no token')
  t.same(c1.json.identity, { enc: b64(bob.dh), sign: b64(bob.sig) })
  t.same([c1.json.kemPrekey.id, c1.json.kemPrekey.lastResort, c1.json.oneTimePrekey.id], [20, false, 10])
  // the bundle is one PQXDH accepts (signatures checked by the initiator, §3.3)
  const alice = identity()
  const bundle = {
    identity: { dh: Buffer.from(c1.json.identity.enc, 'base64'), sig: Buffer.from(c1.json.identity.sign, 'base64') },
    signedPrekey: { id: c1.json.signedPrekey.id, key: Buffer.from(c1.json.signedPrekey.key, 'base64'), signature: Buffer.from(c1.json.signedPrekey.signature, 'base64') },
    kemPrekey: { id: c1.json.kemPrekey.id, key: Buffer.from(c1.json.kemPrekey.key, 'base64'), signature: Buffer.from(c1.json.kemPrekey.signature, 'base64'), lastResort: false },
    oneTimePrekey: { id: 10, key: Buffer.from(c1.json.oneTimePrekey.key, 'base64') }
  }
  t.doesNotThrow(() => pqxdhInitiate({ me: alice, myName: 'alice', peerName: 'bob', bundle }))
  const c2 = await call(gateway, 'POST', '/v1/users/bob/prekeys/claim', { token })
  t.same([c2.json.kemPrekey.id, c2.json.oneTimePrekey.id], [21, 11], 'the next keys; a token sent along changes nothing')
  const c3 = await call(gateway, 'POST', '/v1/users/bob/prekeys/claim')
  t.same([c3.json.kemPrekey.id, c3.json.kemPrekey.lastResort, c3.json.oneTimePrekey], [2, true, undefined], 'last resort, no one-time X25519 key')
  t.same((await call(gateway, 'GET', '/v1/users/me/prekeys', { token })).json, { oneTime: 0, oneTimeKem: 0, signedPrekeyId: 1, lastResortId: 2 })

  t.equal((await call(gateway, 'POST', '/v1/users/nobody/prekeys/claim')).json.error.code, 'MM_ERR_USER_UNKNOWN')
  await account(gateway, 'oldclient', identity())
  const none = await call(gateway, 'POST', '/v1/users/oldclient/prekeys/claim')
  t.same([none.status, none.json.error.code], [404, 'MM_ERR_NO_PREKEYS'], 'an account that never published prekeys')
})

t.test('uploads are checked: signatures, lengths, ids, bounds', async t => {
  const { gateway } = await stack(t)
  const bob = identity()
  const mallory = identity()
  const token = await account(gateway, 'bob', bob)
  const spk = ecKey()
  const cases: Array<[string, unknown, string]> = [
    ['signed by another identity', { signedPrekey: signed(mallory, 'signed', 1, spk) }, 'MM_ERR_BAD_PREKEY'],
    ['a one-time KEM key uploaded as last resort', { lastResortKem: signed(bob, 'kem-one-time', 2, kemKey()) }, 'MM_ERR_BAD_PREKEY'],
    ['a signature for another id', { signedPrekey: { ...signed(bob, 'signed', 1, spk), id: 2 } }, 'MM_ERR_BAD_PREKEY'],
    ['a key of the wrong length', { signedPrekey: { ...signed(bob, 'signed', 1, spk), key: b64(Buffer.alloc(31)) + 'AA' } }, 'MM_ERR_VALIDATION'],
    ['a repeated one-time id', { oneTime: [{ id: 5, key: b64(ecKey()) }, { id: 5, key: b64(ecKey()) }] }, 'MM_ERR_BAD_PREKEY'],
    ['too many in one batch', { oneTime: Array.from({ length: 51 }, (_, id) => ({ id, key: b64(ecKey()) })) }, 'MM_ERR_VALIDATION'],
    ['an id over 32 bits', { oneTime: [{ id: 2 ** 32, key: b64(ecKey()) }] }, 'MM_ERR_VALIDATION']
  ]
  for (const [what, body, code] of cases) {
    const res = await call(gateway, 'PUT', '/v1/users/me/prekeys', { token, body })
    t.same([res.status, res.json.error?.code], [400, code], what)
  }
  t.same((await call(gateway, 'GET', '/v1/users/me/prekeys', { token })).json, { oneTime: 0, oneTimeKem: 0 }, 'nothing was stored')
  for (let i = 0; i < MAX_STORED_ONE_TIME / 50; i++) {
    const res = await call(gateway, 'PUT', '/v1/users/me/prekeys', { token, body: { oneTime: Array.from({ length: 50 }, (_, j) => ({ id: i * 50 + j, key: b64(ecKey()) })) } })
    t.equal(res.status, 200)
  }
  const over = await call(gateway, 'PUT', '/v1/users/me/prekeys', { token, body: { oneTime: [{ id: 999, key: b64(ecKey()) }] } })
  t.same([over.status, over.json.error.code], [400, 'MM_ERR_BAD_PREKEY'], `at most ${MAX_STORED_ONE_TIME} stored`)
})

t.test('concurrent claims through the gateway never share a one-time key', async t => {
  const { gateway } = await stack(t)
  const bob = identity()
  const token = await account(gateway, 'bob', bob)
  const ids = Array.from({ length: 20 }, (_, i) => i + 1)
  const body = {
    signedPrekey: signed(bob, 'signed', 1, ecKey()),
    lastResortKem: signed(bob, 'kem-last-resort', 1000, kemKey()),
    oneTime: ids.map(id => ({ id, key: b64(ecKey()) })),
    oneTimeKem: ids.map(id => signed(bob, 'kem-one-time', id, kemKey()))
  }
  t.equal((await call(gateway, 'PUT', '/v1/users/me/prekeys', { token, body })).status, 200)
  const claims = await Promise.all(Array.from({ length: 25 }, () => call(gateway, 'POST', '/v1/users/bob/prekeys/claim')))
  const kem = claims.map(c => c.json.kemPrekey).filter(k => !k.lastResort).map(k => k.id)
  const ec = claims.map(c => c.json.oneTimePrekey?.id).filter(id => id !== undefined)
  // the per-name budget hands out its burst (10) and no more; each of those once
  t.equal(kem.length, ONE_TIME_PER_NAME.burst, 'as many one-time ML-KEM prekeys as the burst')
  t.equal(new Set(kem).size, kem.length, 'each one-time ML-KEM prekey once')
  t.equal(new Set(ec).size, ec.length, 'each one-time X25519 prekey once')
  t.equal(ec.length, ONE_TIME_PER_NAME.burst)
  t.ok(claims.every(c => c.status === 200 && c.json.signedPrekey), 'every claim still gets a bundle')
})

t.test('an anonymous claimer cannot drain one-time prekeys: a burst per name, then the last-resort key until the budget refills', async t => {
  const s = await clockedStack(t)
  const bob = identity()
  const keys = { enc: b64(bob.dh), sign: b64(bob.sig) }
  t.equal((await gw(s.gateway, 'POST', '/v1/auth/register', { circuit: 'c-bob', body: { username: 'bob', password: PASSWORD, keys } })).status, 201)
  const token = (await gw(s.gateway, 'POST', '/v1/auth/login', { circuit: 'c-bob', body: { username: 'bob', password: PASSWORD } })).json.token
  const ids = Array.from({ length: 20 }, (_, i) => i + 1)
  t.equal((await gw(s.gateway, 'PUT', '/v1/users/me/prekeys', { circuit: 'c-bob', token, body: {
    signedPrekey: signed(bob, 'signed', 100, ecKey()), lastResortKem: signed(bob, 'kem-last-resort', 1000, kemKey()),
    oneTime: ids.map(id => ({ id, key: b64(ecKey()) })), oneTimeKem: ids.map(id => signed(bob, 'kem-one-time', id, kemKey())),
  } })).status, 200)
  // the drainer: a fresh circuit per claim (claims carry no token, so nothing else to meter)
  let n = 0
  const claim = async () => (await gw(s.gateway, 'POST', '/v1/users/bob/prekeys/claim', { circuit: `drain-${n++}` })).json
  const first = []
  for (let i = 0; i < 30; i++) first.push(await claim())
  t.equal(first.filter(b => !b.kemPrekey.lastResort).length, ONE_TIME_PER_NAME.burst, 'thirty claims at once take the burst only')
  t.ok(first.slice(ONE_TIME_PER_NAME.burst).every(b => b.kemPrekey.lastResort && b.oneTimePrekey === undefined), 'then the last-resort ML-KEM key and no one-time X25519 key')
  t.same(await s.users.prekeyCounts('bob'), { oneTime: 10, oneTimeKem: 10, signedPrekeyId: 100, lastResortId: 1000 }, 'half of bob\'s one-time keys are still his')
  await s.clock.advance(Math.ceil(1000 / ONE_TIME_PER_NAME.perSecond))
  const later = await claim()
  t.notOk(later.kemPrekey.lastResort, 'the budget refills with time: a one-time key again')
  t.ok(later.oneTimePrekey)
})
