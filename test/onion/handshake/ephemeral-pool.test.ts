// EphemeralPool: keys handed out once, refilled after the turn, bounded, erased on
// clear; and a pooled key answers a CREATE exactly as a fresh one does.
import t from 'tap'
import { setImmediate as turn } from 'node:timers/promises'
import { EphemeralPool } from '../../../src/onion/handshake/ephemeral-pool.js'
import { clientFinish, clientStart, relayRespond } from '../../../src/onion/handshake/oaep-x25519.js'
import { fixedIdentity as id } from '../helpers.js'

const settle = async () => { for (let i = 0; i < 10; i++) await turn() }

t.test('keys are made ahead, handed out once, and the pool stays bounded', async t => {
  const pool = new EphemeralPool(3)
  t.equal(pool.available, 0, 'empty until first used')
  const first = pool.take() // made on the spot
  await settle()
  t.equal(pool.available, 3, 'refilled to its size after the turn')
  const seen = new Set([first.publicKey.toString('hex')])
  for (let i = 0; i < 20; i++) {
    const k = pool.take()
    t.notOk(seen.has(k.publicKey.toString('hex')), 'never the same key twice')
    seen.add(k.publicKey.toString('hex'))
    if (i % 4 === 0) await settle()
    t.ok(pool.available <= 3, 'never more than its size')
  }
})

t.test('clear erases the waiting keys and stops refilling', async t => {
  const pool = new EphemeralPool(2)
  pool.take()
  await settle()
  const waiting = [pool.take(), pool.take()] // the two prepared ones
  await settle()
  t.equal(pool.available, 2)
  pool.clear()
  t.equal(pool.available, 0)
  pool.take()
  await settle()
  t.equal(pool.available, 0, 'no refill after clear')
  t.ok(waiting.every(k => !k.disposed), 'keys already handed out are the caller\'s to dispose of')
})

t.test('a pooled key completes a handshake and is erased by it, refused or not', async t => {
  const pool = new EphemeralPool(2)
  const { state, create } = clientStart({ identityKey: id.publicDer })
  const eph = pool.take()
  const r = relayRespond({ identityPrivate: id.privateDer, fingerprint: id.fingerprint, create, ephemeral: eph })
  t.same(r.created.subarray(0, 32), eph.publicKey, 'Y is the pooled key\'s public half')
  const keys = clientFinish(state, r.created)
  t.same(keys, r.keys, 'both ends derive the same keys')
  t.ok(eph.disposed, 'disposed of after use')
  t.throws(() => eph.agree(state.X), { code: 'MM_ERR_HANDSHAKE' }, 'a used key agrees no more')
  const refused = pool.take()
  const bad = Buffer.from(create)
  bad[40] ^= 1 // the RSA block no longer decrypts
  t.throws(() => relayRespond({ identityPrivate: id.privateDer, fingerprint: id.fingerprint, create: bad, ephemeral: refused }))
  t.ok(refused.disposed, 'disposed of when the CREATE is refused too')
})
