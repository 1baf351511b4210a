// The DM session layer (docs/PROTOCOL.md §11): PQXDH (Signal rev. 3) and the Double Ratchet
// with header encryption (§4) against the fixed vectors in session-pqxdh.json and
// session-ratchet.json (the SK recomputed from raw node:crypto over the documented KDF input),
// then the properties issue 16 names: out-of-order delivery within MAX_SKIP, a gap beyond it
// refused, a replay refused (also after a restart, i.e. a saved and reloaded state), forward
// secrecy and healing after a state compromise, safety numbers alike on both sides.
import t from 'tap'
import { diffieHellman, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto'
import { ed25519PublicFromPrivate, x25519PublicFromPrivate } from '../../../src/onion/crypto/primitives.js'
import { mlkemDecapsulate, mlkemKeyPair } from '../../../src/onion/crypto/mlkem.js'
import { pqxdhInitiate, pqxdhRespond, signPrekey, verifyPrekey, type IdentityPrivate, type PrekeyBundle } from '../../../src/onion/crypto/pqxdh.js'
import {
  MAX_SKIP, MAX_SKIPPED_TOTAL, cloneState, ratchetDecrypt, ratchetEncrypt, ratchetInitAlice, ratchetInitBob, stateFromJson, stateToJson, type RatchetState
} from '../../../src/onion/crypto/ratchet.js'
import { acceptSession, sameInitial, sessionDecrypt, sessionEncrypt, sessionFromJson, sessionToJson, startSession, type Session } from '../../../src/onion/crypto/session.js'
import { decodeInner } from '../../../src/onion/crypto/session-message.js'
import { safetyNumber, safetyQrMatches } from '../../../src/onion/crypto/safety-number.js'
import { codeOf, detRng, flipBit, hex, vectors } from '../helpers.js'

const pv = vectors('session-pqxdh.json')
const rv = vectors('session-ratchet.json')
const idOf = (o: { dhPrivate: string, sigPrivate: string, dh: string, sig: string }): IdentityPrivate =>
  ({ dhPrivate: hex(o.dhPrivate), sigPrivate: hex(o.sigPrivate), dh: hex(o.dh), sig: hex(o.sig) })
const alice = idOf(pv.alice)
const bob = idOf(pv.bob)
const bundleOf = (): PrekeyBundle => ({
  identity: { dh: bob.dh, sig: bob.sig },
  signedPrekey: { id: pv.signedPrekey.id, key: hex(pv.signedPrekey.public), signature: hex(pv.signedPrekey.signature) },
  kemPrekey: { id: pv.kemPrekey.id, key: hex(pv.kemPrekey.public), signature: hex(pv.kemPrekey.signature), lastResort: false },
  oneTimePrekey: { id: pv.oneTimePrekey.id, key: hex(pv.oneTimePrekey.public) }
})

t.test('vector: PQXDH keys, signatures and secrets', async t => {
  t.equal(x25519PublicFromPrivate(alice.dhPrivate).toString('hex'), pv.alice.dh)
  t.equal(ed25519PublicFromPrivate(bob.sigPrivate).toString('hex'), pv.bob.sig)
  t.equal(mlkemKeyPair(hex(pv.kemPrekey.seed)).publicKey.toString('hex'), pv.kemPrekey.public, 'ML-KEM key pair from its 64-byte seed')
  t.equal(signPrekey(bob, 'signed', 7, hex(pv.signedPrekey.public)).toString('hex'), pv.signedPrekey.signature, 'Ed25519 is deterministic')
  t.ok(verifyPrekey(bob, 'kem-one-time', 9, hex(pv.kemPrekey.public), hex(pv.kemPrekey.signature)))
  t.notOk(verifyPrekey(bob, 'kem-last-resort', 9, hex(pv.kemPrekey.public), hex(pv.kemPrekey.signature)), 'the kind is signed')
  t.notOk(verifyPrekey(bob, 'kem-one-time', 10, hex(pv.kemPrekey.public), hex(pv.kemPrekey.signature)), 'the id is signed')
  t.equal(mlkemDecapsulate(hex(pv.kemPrekey.seed), hex(pv.kemCiphertext)).toString('hex'), pv.kemSharedSecret)

  const { header, secrets } = pqxdhInitiate({ me: alice, myName: 'alice', peerName: 'bob', bundle: bundleOf(), fixed: { ephemeralPrivate: hex(pv.ephemeralPrivate), kem: { ciphertext: hex(pv.kemCiphertext), sharedSecret: hex(pv.kemSharedSecret) } } })
  t.equal(header.ephemeral.toString('hex'), pv.ephemeral)
  t.same([secrets.sk, secrets.hka, secrets.nhkb, secrets.ad].map(b => b.toString('hex')), [pv.sk, pv.hka, pv.nhkb, pv.ad], 'Alice: §3.3')
  const b = pqxdhRespond({ me: bob, myName: 'bob', peerName: 'alice', header, signedPrekeyPrivate: hex(pv.signedPrekey.private), kemSeed: hex(pv.kemPrekey.seed), oneTimePrivate: hex(pv.oneTimePrekey.private) })
  t.same([b.sk, b.hka, b.nhkb, b.ad].map(x => x.toString('hex')), [pv.sk, pv.hka, pv.nhkb, pv.ad], 'Bob: §3.4, the same secrets')

  // §2.2 recomputed without our code: HKDF-SHA-256(salt = 32 zero bytes, ikm = 32×0xFF ‖ DH1 ‖ DH2 ‖ DH3 ‖ DH4 ‖ SS, info)
  const priv = (raw: string) => createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), hex(raw)]), format: 'der', type: 'pkcs8' })
  const pub = (raw: string) => createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), hex(raw)]), format: 'der', type: 'spki' })
  const dh = (a: string, b: string) => diffieHellman({ privateKey: priv(a), publicKey: pub(b) })
  const km = Buffer.concat([Buffer.alloc(32, 0xff), dh(pv.alice.dhPrivate, pv.signedPrekey.public), dh(pv.ephemeralPrivate, pv.bob.dh),
    dh(pv.ephemeralPrivate, pv.signedPrekey.public), dh(pv.ephemeralPrivate, pv.oneTimePrekey.public), hex(pv.kemSharedSecret)])
  const sk = Buffer.from(hkdfSync('sha256', km, Buffer.alloc(32), 'Marshmello_PQXDH_X25519_SHA-256_ML-KEM-768', 32))
  t.equal(sk.toString('hex'), pv.sk, 'SK is KDF(KM) of §2.2, byte for byte')
  t.equal(hex(pv.ad).subarray(0, 66).toString('hex'), '05' + pv.alice.dh + '05' + pv.bob.dh, 'AD starts EncodeEC(IKA) ‖ EncodeEC(IKB)')
})

t.test('PQXDH: a bad bundle is refused, a wrong private key agrees on nothing', async t => {
  const bad = bundleOf()
  bad.signedPrekey.signature = flipBit(bad.signedPrekey.signature, 3)
  t.equal(codeOf(() => pqxdhInitiate({ me: alice, myName: 'alice', peerName: 'bob', bundle: bad })), 'MM_ERR_BAD_PREKEY', 'signed prekey signature (§3.3: abort)')
  const bad2 = bundleOf()
  bad2.kemPrekey.lastResort = true
  t.equal(codeOf(() => pqxdhInitiate({ me: alice, myName: 'alice', peerName: 'bob', bundle: bad2 })), 'MM_ERR_BAD_PREKEY', 'a one-time KEM key passed off as last resort')
  const bad3 = bundleOf()
  bad3.signedPrekey.key = Buffer.alloc(32) // low order
  bad3.signedPrekey.signature = signPrekey(bob, 'signed', 7, bad3.signedPrekey.key)
  t.equal(codeOf(() => pqxdhInitiate({ me: alice, myName: 'alice', peerName: 'bob', bundle: bad3 })), 'MM_ERR_BAD_PREKEY', 'a low-order prekey')

  const { header, secrets } = pqxdhInitiate({ me: alice, myName: 'alice', peerName: 'bob', bundle: bundleOf() })
  const right = { me: bob, myName: 'bob', peerName: 'alice', header, signedPrekeyPrivate: hex(pv.signedPrekey.private), kemSeed: hex(pv.kemPrekey.seed), oneTimePrivate: hex(pv.oneTimePrekey.private) }
  t.same(pqxdhRespond(right).sk, secrets.sk, 'a real encapsulation agrees')
  t.notSame(pqxdhRespond({ ...right, kemSeed: Buffer.alloc(64, 1) }).sk, secrets.sk, 'another KEM key: another SK (the post-quantum share counts)')
  t.notSame(pqxdhRespond({ ...right, oneTimePrivate: Buffer.alloc(32, 9) }).sk, secrets.sk, 'another one-time key: another SK')
  t.notSame(pqxdhRespond({ ...right, peerName: 'mallory' }).ad, secrets.ad, 'the names are bound into AD')
  t.equal(codeOf(() => pqxdhRespond({ ...right, oneTimePrivate: undefined })), 'MM_ERR_BAD_PREKEY', 'a named one-time key that is gone')
})

t.test('vector: a Double Ratchet conversation, byte for byte', async t => {
  const rr = detRng('marshmello ratchet vectors')
  const sk = rr(32); const hka = rr(32); const nhkb = rr(32); const bobPriv = rr(32)
  t.same([sk, hka, nhkb, bobPriv].map(b => b.toString('hex')), [rv.sk, rv.hka, rv.nhkb, rv.bobRatchetPrivate])
  const ad = hex(rv.ad)
  let a = ratchetInitAlice(sk, x25519PublicFromPrivate(bobPriv), hka, nhkb, rr)
  let b = ratchetInitBob(sk, bobPriv, hka, nhkb)
  for (const m of rv.messages) {
    const [send, recv] = m.from === 'alice' ? [a, b] : [b, a]
    const out = ratchetEncrypt(send, Buffer.from(m.plaintext), ad, rr)
    t.equal(out.message.toString('hex'), m.message, `${m.from}: ${m.plaintext}`)
    const got = ratchetDecrypt(recv, hex(m.message), ad, rr)
    if (!got.ok) throw new Error(got.reason)
    t.equal(got.plaintext.toString(), m.plaintext)
    if (m.from === 'alice') { a = out.state; b = got.state } else { b = out.state; a = got.state }
  }
})

/** a fresh pair of ratchets (random keys), Alice able to send */
function pair (): { a: RatchetState, b: RatchetState, ad: Buffer } {
  const bobPriv = Buffer.alloc(32, 4)
  const sk = Buffer.alloc(32, 1); const hka = Buffer.alloc(32, 2); const nhkb = Buffer.alloc(32, 3)
  return { a: ratchetInitAlice(sk, x25519PublicFromPrivate(bobPriv), hka, nhkb), b: ratchetInitBob(sk, bobPriv, hka, nhkb), ad: Buffer.from('ad') }
}
const enc = (s: RatchetState, text: string, ad: Buffer) => ratchetEncrypt(s, Buffer.from(text), ad)

t.test('ratchet: out of order within MAX_SKIP, each key once', async t => {
  let { a, b, ad } = pair()
  const sent: Buffer[] = []
  for (let i = 0; i < 5; i++) { const o = enc(a, `m${i}`, ad); a = o.state; sent.push(o.message) }
  for (const i of [3, 0, 4, 2, 1]) {
    const r = ratchetDecrypt(b, sent[i], ad)
    if (!r.ok) throw new Error(`m${i}: ${r.reason}`)
    t.equal(r.plaintext.toString(), `m${i}`)
    b = r.state
  }
  t.equal(b.skipped.length, 0, 'every skipped key used is deleted')
  for (const i of [0, 3, 4]) t.same(ratchetDecrypt(b, sent[i], ad), { ok: false, reason: 'replay' }, `m${i} a second time is refused`)
  // over a DH step: Bob answers, Alice's late message of the old chain still opens
  const late: Buffer[] = []
  for (let i = 0; i < 2; i++) { const o = enc(a, `old${i}`, ad); a = o.state; late.push(o.message) }
  const reply = enc(b, 'reply', ad); b = reply.state
  const ra = ratchetDecrypt(a, reply.message, ad); if (!ra.ok) throw new Error(ra.reason); a = ra.state
  const fresh = enc(a, 'new chain', ad)
  const r1 = ratchetDecrypt(b, fresh.message, ad); if (!r1.ok) throw new Error(r1.reason); b = r1.state
  t.equal(b.skipped.length, 2, 'the old chain\'s two unread keys are kept (PN)')
  for (let i = 1; i >= 0; i--) {
    const r = ratchetDecrypt(b, late[i], ad); if (!r.ok) throw new Error(r.reason); b = r.state
    t.equal(r.plaintext.toString(), `old${i}`)
  }
})

t.test('ratchet: a gap beyond MAX_SKIP is refused and changes nothing; the store is capped', async t => {
  let { a, b, ad } = pair()
  let last: Buffer | undefined
  for (let i = 0; i <= MAX_SKIP + 1; i++) { const o = enc(a, `m${i}`, ad); a = o.state; last = o.message }
  const before = JSON.stringify(stateToJson(b))
  t.same(ratchetDecrypt(b, last!, ad), { ok: false, reason: 'too-far' }, `message ${MAX_SKIP + 1} needs ${MAX_SKIP + 1} skipped keys`)
  t.equal(JSON.stringify(stateToJson(b)), before, 'the state is untouched')
  // exactly MAX_SKIP is fine
  let c = pair()
  let m: Buffer | undefined
  for (let i = 0; i <= MAX_SKIP; i++) { const o = enc(c.a, `m${i}`, c.ad); c.a = o.state; m = o.message }
  const ok = ratchetDecrypt(c.b, m!, c.ad)
  t.ok(ok.ok, `a gap of exactly ${MAX_SKIP} opens`)
  if (ok.ok) t.equal(ok.state.skipped.length, MAX_SKIP)
  // three chains of MAX_SKIP skipped keys each: the total stays at the cap, oldest dropped
  c = pair()
  let bs = c.b
  let as = c.a
  for (let round = 0; round < 3; round++) {
    let msg: Buffer | undefined
    for (let i = 0; i <= MAX_SKIP; i++) { const o = enc(as, 'x', c.ad); as = o.state; msg = o.message }
    const r = ratchetDecrypt(bs, msg!, c.ad); if (!r.ok) throw new Error(r.reason); bs = r.state
    const back = enc(bs, 'y', c.ad); bs = back.state
    const ra = ratchetDecrypt(as, back.message, c.ad); if (!ra.ok) throw new Error(ra.reason); as = ra.state
  }
  t.equal(bs.skipped.length, MAX_SKIPPED_TOTAL, 'skipped keys are capped in total')
})

t.test('ratchet: a replay is refused after a restart (state saved and reloaded)', async t => {
  const { a, b, ad } = pair()
  const o = enc(a, 'once', ad)
  const r = ratchetDecrypt(b, o.message, ad); if (!r.ok) throw new Error(r.reason)
  const saved = JSON.parse(JSON.stringify(stateToJson(r.state)))
  const reloaded = stateFromJson(saved)
  t.same(ratchetDecrypt(reloaded, o.message, ad), { ok: false, reason: 'replay' })
  t.same(ratchetDecrypt(reloaded, flipBit(o.message, 100), ad).ok, false, 'a flipped header bit')
  t.same(ratchetDecrypt(reloaded, flipBit(o.message, 8 * 80), ad).ok, false, 'a flipped body bit')
  t.same(ratchetDecrypt(reloaded, o.message.subarray(0, 40), ad), { ok: false, reason: 'malformed' })
  t.throws(() => stateFromJson({ ...saved, rk: 'AAAA' }), 'a corrupt saved state is refused')
})

t.test('ratchet: forward secrecy: captured ciphertext + both current states decrypt nothing earlier', async t => {
  let { a, b, ad } = pair()
  const captured: Buffer[] = []
  for (let round = 0; round < 3; round++) {
    const o = enc(a, `a${round}`, ad); a = o.state; captured.push(o.message)
    const r = ratchetDecrypt(b, o.message, ad); if (!r.ok) throw new Error(r.reason); b = r.state
    const p = enc(b, `b${round}`, ad); b = p.state; captured.push(p.message)
    const q = ratchetDecrypt(a, p.message, ad); if (!q.ok) throw new Error(q.reason); a = q.state
  }
  // the attacker now holds both sides' whole state (every key the parties still have)
  for (const [i, c] of captured.entries()) {
    t.notOk(ratchetDecrypt(cloneState(a), c, ad).ok, `message ${i} with Alice's state`)
    t.notOk(ratchetDecrypt(cloneState(b), c, ad).ok, `message ${i} with Bob's state`)
  }
})

t.test('ratchet: healing: one round trip after a compromise the stolen state decrypts nothing new', async t => {
  // §6.2: a stolen state reads on until the victim's next ratchet key has been answered
  let { a, b, ad } = pair()
  const step = (from: 'a' | 'b', text: string) => {
    const o = enc(from === 'a' ? a : b, text, ad)
    if (from === 'a') a = o.state; else b = o.state
    return o.message
  }
  const deliver = (to: 'a' | 'b', m: Buffer) => {
    const r = ratchetDecrypt(to === 'a' ? a : b, m, ad)
    if (!r.ok) throw new Error(r.reason)
    if (to === 'a') a = r.state; else b = r.state
  }
  deliver('b', step('a', 'hi'))
  let attacker = cloneState(b) // the attacker copies Bob's whole state, then watches every message to Bob
  const watch = (m: Buffer) => { const r = ratchetDecrypt(attacker, m, ad); if (r.ok) attacker = r.state; return r.ok }
  deliver('a', step('b', 'reply'))
  const before = step('a', 'before healing')
  t.ok(watch(before), 'until healed, the copy reads what Alice sends (what a compromise means)')
  deliver('b', before) // Bob answers with a fresh ratchet key the attacker never saw
  deliver('a', step('b', 'fresh key'))
  const after = [step('a', 'after 1'), step('a', 'after 2')]
  for (const m of after) t.notOk(watch(m), 'one round trip later, nothing opens with the stolen state')
  for (const m of after) t.doesNotThrow(() => deliver('b', m), 'Bob reads them')
})

t.test('session: PQXDH + ratchet through the inner wire form; repeats and replays', async t => {
  const kem = mlkemKeyPair(hex(pv.kemPrekey.seed))
  let sa: Session = startSession({ me: alice, myName: 'alice', peerName: 'bob', bundle: bundleOf() })
  const m1 = sessionEncrypt(sa, Buffer.from('one')); sa = m1.session
  const m2 = sessionEncrypt(sa, Buffer.from('two')); sa = m2.session
  const in1 = decodeInner(m1.bytes)
  const in2 = decodeInner(m2.bytes)
  if (in1?.kind !== 'prekey' || in2?.kind !== 'prekey') throw new Error('expected prekey messages')
  t.ok(in1.header.ephemeral.equals(in2.header.ephemeral), 'the PQXDH header repeats until a reply')
  t.equal(in1.header.oneTimePrekeyId, pv.oneTimePrekey.id)
  let sb = acceptSession({ me: bob, myName: 'bob', peerName: 'alice', header: in1.header, signedPrekeyPrivate: hex(pv.signedPrekey.private), kemSeed: kem.seed, oneTimePrivate: hex(pv.oneTimePrekey.private) })
  t.ok(sameInitial(sb, in2.header), 'the second message belongs to the same session')
  const d2 = sessionDecrypt(sb, in2.message); if (!d2.ok) throw new Error(d2.reason); sb = d2.session
  const d1 = sessionDecrypt(sb, in1.message); if (!d1.ok) throw new Error(d1.reason); sb = d1.session
  t.same([d1.plaintext.toString(), d2.plaintext.toString()], ['one', 'two'])
  // restart: both saved and reloaded; a replay of either message is refused
  sb = sessionFromJson(JSON.parse(JSON.stringify(sessionToJson(sb))))
  sa = sessionFromJson(JSON.parse(JSON.stringify(sessionToJson(sa))))
  t.notOk(sessionDecrypt(sb, in1.message).ok, 'replay of message one after a restart')
  t.notOk(sessionDecrypt(sb, in2.message).ok, 'replay of message two after a restart')
  const reply = sessionEncrypt(sb, Buffer.from('three'))
  const inR = decodeInner(reply.bytes)
  t.equal(inR?.kind, 'message', 'the responder sends plain ratchet messages')
  if (inR?.kind !== 'message') throw new Error('expected a ratchet message')
  const d3 = sessionDecrypt(sa, inR.message); if (!d3.ok) throw new Error(d3.reason); sa = d3.session
  t.equal(sa.pending, null, 'a reply ends the PQXDH repeats')
  t.equal(decodeInner(sessionEncrypt(sa, Buffer.from('four')).bytes)?.kind, 'message')
  t.equal(decodeInner(Buffer.from([1, 2, 3]))?.kind, 'legacy', 'the old envelope v1 is recognised')
  t.equal(decodeInner(Buffer.from([9, 2, 3])), undefined)
  t.equal(decodeInner(m1.bytes.subarray(0, 500)), undefined, 'a truncated prekey message')
})

t.test('safety numbers: 60 digits, the same on both sides, vector, QR strings pair up', async t => {
  const ab = safetyNumber({ identity: alice, username: 'alice' }, { identity: bob, username: 'bob' })
  const ba = safetyNumber({ identity: bob, username: 'bob' }, { identity: alice, username: 'alice' })
  t.match(ab.digits, /^[0-9]{60}$/)
  t.equal(ab.digits, ba.digits, 'both sides compute one number')
  t.same(ab, pv.safetyNumber, 'vector')
  t.ok(safetyQrMatches(ab.qr, ba.qr), 'each side\'s QR matches the other\'s')
  t.notOk(safetyQrMatches(ab.qr, ab.qr), 'one\'s own QR does not')
  const other = safetyNumber({ identity: alice, username: 'alice' }, { identity: { ...bob, sig: alice.sig }, username: 'bob' })
  t.not(other.digits, ab.digits, 'the Ed25519 identity key counts')
  t.not(safetyNumber({ identity: alice, username: 'alice' }, { identity: bob, username: 'bobby' }).digits, ab.digits, 'the username counts')
})
