// The circuit handshake (docs/PROTOCOL.md §5.1): the recorded CREATE yields the exact
// CREATED and keys, re-derived here with raw node:crypto; an impostor without the listed
// identity key cannot complete it from either side (P4); tampered or low-order inputs
// are refused with MM_ERR_HANDSHAKE / MM_ERR_LENGTH; ephemeral secrets are zeroed (P5).
import t from 'tap'
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync } from 'node:crypto'
import { CREATED_LENGTH, PROTOCOL_ID, clientFinish, clientStart, parseCreate, relayRespond, type ClientHandshakeState } from '../../../src/onion/handshake/oaep-x25519.js'
import { rsaFingerprint, rsaGenerate, rsaOaepDecrypt, sha256, x25519Ephemeral } from '../../../src/onion/crypto/primitives.js'
import { codeOf, fixedIdentity, flipBit, hex, tally, vectors } from '../helpers.js'

const v = vectors('onion-handshake.json')
const id = fixedIdentity
const enc = () => hex(v.create).subarray(34)
/** the client state the recorded CREATE was made with (clientFinish zeroes it, so build it fresh each time) */
const recordedState = (): ClientHandshakeState => { return { eph: x25519Ephemeral(hex(v.x)), X: hex(v.X), s: hex(v.s), fingerprint: hex(v.fingerprint), encHash: sha256(enc()) } }
const respond = (create: Buffer, identityPrivate = id.privateDer) => relayRespond({ identityPrivate, fingerprint: id.fingerprint, create, ephemeralPrivate: hex(v.y) })

/** the 8 X25519 points of small order, plus their non-canonical encodings (RFC 7748 / libsodium's blocklist) */
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
]

t.test('vector: the recorded identity and fingerprint agree', async t => {
  t.equal(rsaFingerprint(id.publicDer).toString('hex'), v.fingerprint, 'fingerprint = SHA-256(SPKI DER)')
  t.equal(createPublicKey({ key: id.publicDer, format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength, 2048)
  t.equal(rsaOaepDecrypt(id.privateDer, enc())?.toString('hex'), v.s, 'the RSA block carries s')
})

t.test('vector: relayRespond with fixed y gives the exact CREATED and keys', async t => {
  const { keys, created } = respond(hex(v.create))
  t.equal(created.toString('hex'), v.created)
  t.equal(created.length, CREATED_LENGTH)
  t.equal(created.subarray(0, 32).toString('hex'), v.Y, 'CREATED starts with Y')
  t.equal(keys.forward.toString('hex'), v.forward)
  t.equal(keys.backward.toString('hex'), v.backward)
})

t.test('vector: clientFinish on the recorded CREATED gives the same keys', async t => {
  const keys = clientFinish(recordedState(), hex(v.created))
  t.equal(keys.forward.toString('hex'), v.forward)
  t.equal(keys.backward.toString('hex'), v.backward)
  // padding after the 64 bytes (a CREATED travels in a whole cell) is ignored
  const padded = clientFinish(recordedState(), Buffer.concat([hex(v.created), Buffer.alloc(100, 7)]))
  t.equal(padded.forward.toString('hex'), v.forward)
})

t.test('vector: the derivation re-computed with raw node:crypto (the §5.1 recipe)', async t => {
  const pkcs8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
  const spki = Buffer.from('302a300506032b656e032100', 'hex')
  const dh = diffieHellman({
    privateKey: createPrivateKey({ key: Buffer.concat([pkcs8, hex(v.y)]), format: 'der', type: 'pkcs8' }),
    publicKey: createPublicKey({ key: Buffer.concat([spki, hex(v.X)]), format: 'der', type: 'spki' }),
  })
  t.equal(dh.toString('hex'), v.dh, 'dh = X25519(y, X) = X25519(x, Y)')
  t.equal(PROTOCOL_ID.toString(), 'marshmello/v1')
  const okm = Buffer.from(hkdfSync('sha256', Buffer.concat([hex(v.s), dh]), Buffer.alloc(0),
    Buffer.concat([Buffer.from('marshmello/v1'), hex(v.X), hex(v.Y), hex(v.fingerprint)]), 96))
  t.equal(okm.subarray(0, 32).toString('hex'), v.forward, 'forward = okm[0..32]')
  t.equal(okm.subarray(32, 64).toString('hex'), v.backward, 'backward = okm[32..64]')
  const auth = createHmac('sha256', okm.subarray(64, 96))
    .update(Buffer.from('marshmello/v1 auth')).update(hex(v.fingerprint)).update(hex(v.X)).update(hex(v.Y)).update(sha256(enc()))
    .digest()
  t.equal(auth.toString('hex'), v.created.slice(64), 'auth = HMAC(okm[64..96], label | fp | X | Y | SHA-256(RSA block))')
  t.equal(v.encHash, sha256(enc()).toString('hex'))
})

t.test('clientStart with fixed x and s: X, length-prefixed RSA block, state', async t => {
  const { state, create } = clientStart({ identityKey: id.publicDer, ephemeralPrivate: hex(v.x), secret: hex(v.s) })
  t.equal(create.subarray(0, 32).toString('hex'), v.X)
  t.equal(create.readUInt16BE(32), 256, 'encLen = RSA modulus bytes')
  t.equal(create.length, 34 + 256)
  t.not(create.toString('hex'), v.create, 'RSA-OAEP is randomized: a new CREATE differs from the recorded one')
  t.equal(rsaOaepDecrypt(id.privateDer, create.subarray(34))?.toString('hex'), v.s)
  t.equal(state.fingerprint.toString('hex'), v.fingerprint)
  t.same(parseCreate(create).X.toString('hex'), v.X)
  // and it completes with a real (random y) relay
  const r = relayRespond({ identityPrivate: id.privateDer, fingerprint: id.fingerprint, create })
  const k = clientFinish(state, r.created)
  t.same(k.forward, r.keys.forward)
  t.same(k.backward, r.keys.backward)
  t.not(k.forward.toString('hex'), k.backward.toString('hex'))
})

t.test('clientFinish zeroes x and s (P5)', async t => {
  const st = recordedState()
  clientFinish(st, hex(v.created))
  t.ok(st.eph.disposed, 'x disposed of')
  t.ok(st.s.every((b) => b === 0), 's zeroed')
  const st2 = recordedState()
  t.equal(codeOf(() => clientFinish(st2, flipBit(hex(v.created), 300))), 'MM_ERR_HANDSHAKE')
  t.ok(st2.eph.disposed && st2.s.every((b) => b === 0), 'zeroed on an auth failure too')
  const st3 = recordedState()
  t.equal(codeOf(() => clientFinish(st3, Buffer.concat([hex(LOW_ORDER[0]), Buffer.alloc(32)]))), 'MM_ERR_HANDSHAKE')
  t.ok(st3.eph.disposed && st3.s.every((b) => b === 0), 'zeroed when Y is a low-order point')
})

t.test('impostor: a relay without the listed identity key (P4)', async t => {
  const impostor = rsaGenerate(2048)
  const { state, create } = clientStart({ identityKey: id.publicDer })
  // relay side: it cannot recover s
  t.equal(codeOf(() => relayRespond({ identityPrivate: impostor.privateDer, fingerprint: rsaFingerprint(impostor.publicDer), create })), 'MM_ERR_HANDSHAKE')
  t.equal(codeOf(() => relayRespond({ identityPrivate: impostor.privateDer, fingerprint: id.fingerprint, create })), 'MM_ERR_HANDSHAKE', 'claiming the listed fingerprint does not help')
  // client side: whatever it forges, auth fails
  const forged = Buffer.concat([hex(v.Y), Buffer.alloc(32, 0x5a)])
  t.equal(codeOf(() => clientFinish(state, forged)), 'MM_ERR_HANDSHAKE', 'forged CREATED')
  // a CREATE made for the impostor's key, answered by the impostor, fails against the listed fingerprint
  const c2 = clientStart({ identityKey: impostor.publicDer })
  const r2 = relayRespond({ identityPrivate: impostor.privateDer, fingerprint: rsaFingerprint(impostor.publicDer), create: c2.create })
  const listedState = { ...c2.state, fingerprint: id.fingerprint }
  t.equal(codeOf(() => clientFinish(listedState, r2.created)), 'MM_ERR_HANDSHAKE', 'fingerprint is bound into the keys and auth')
})

t.test('every bit flip of CREATED is refused by the client', async t => {
  const created = hex(v.created)
  const out: string[] = []
  for (let bit = 0; bit < CREATED_LENGTH * 8; bit++) out.push(codeOf(() => clientFinish(recordedState(), flipBit(created, bit))))
  t.same(tally(out), { MM_ERR_HANDSHAKE: CREATED_LENGTH * 8 })
})

t.test('every truncation of CREATED: MM_ERR_LENGTH', async t => {
  const out: string[] = []
  for (let n = 0; n < CREATED_LENGTH; n++) out.push(codeOf(() => clientFinish(recordedState(), hex(v.created).subarray(0, n))))
  t.same(tally(out), { MM_ERR_LENGTH: CREATED_LENGTH })
})

t.test('tampered CREATE: X flips are caught by the client, RSA-block flips by the relay', async t => {
  const create = hex(v.create)
  const xOut: string[] = []
  for (let bit = 0; bit < 256; bit++) {
    let created: Buffer
    try {
      created = respond(flipBit(create, bit)).created
    } catch (err) {
      xOut.push(`relay:${(err as { code?: string }).code}`)
      continue
    }
    xOut.push(`client:${codeOf(() => clientFinish(recordedState(), created))}`)
  }
  t.same(Object.keys(tally(xOut)).filter((k) => k !== 'client:MM_ERR_HANDSHAKE' && k !== 'relay:MM_ERR_HANDSHAKE'), [], 'each flipped X fails the handshake')
  const encOut: string[] = []
  for (let bit = 34 * 8; bit < create.length * 8; bit += 7) encOut.push(codeOf(() => respond(flipBit(create, bit))))
  t.same(tally(encOut), { MM_ERR_HANDSHAKE: encOut.length }, 'RSA-OAEP refuses every flipped block (every 7th bit)')
})

t.test('parseCreate: truncation, encLen bounds, trailing padding', async t => {
  const create = hex(v.create)
  const out: string[] = []
  for (let n = 0; n < create.length; n++) out.push(codeOf(() => parseCreate(create.subarray(0, n))))
  t.same(tally(out), { MM_ERR_LENGTH: create.length }, 'every truncation')
  const withLen = (n: number) => { const c = Buffer.concat([create, Buffer.alloc(2048)]); c.writeUInt16BE(n, 32); return c }
  for (const n of [0, 1, 127, 1025, 0xffff]) t.equal(codeOf(() => parseCreate(withLen(n))), 'MM_ERR_LENGTH', `encLen ${n}`)
  t.equal(codeOf(() => parseCreate(withLen(128))), 'NO_THROW')
  t.equal(codeOf(() => respond(withLen(1024))), 'MM_ERR_HANDSHAKE', 'a well-formed but wrong-size RSA block')
  t.equal(parseCreate(Buffer.concat([create, Buffer.alloc(1000, 1)])).enc.length, 256, 'cell padding after the block is ignored')
  const lenBits: string[] = []
  for (let bit = 32 * 8; bit < 34 * 8; bit++) lenBits.push(codeOf(() => respond(flipBit(create, bit))))
  t.same(Object.keys(tally(lenBits)).filter((k) => k !== 'MM_ERR_LENGTH' && k !== 'MM_ERR_HANDSHAKE'), [], 'encLen flips: LENGTH or HANDSHAKE')
})

t.test('low-order X25519 points are refused on both sides', async t => {
  for (const p of LOW_ORDER) {
    const create = Buffer.from(hex(v.create)); hex(p).copy(create, 0)
    t.equal(codeOf(() => respond(create)), 'MM_ERR_HANDSHAKE', `relay, X = ${p.slice(0, 8)}…`)
    t.equal(codeOf(() => clientFinish(recordedState(), Buffer.concat([hex(p), hex(v.created).subarray(32)]))), 'MM_ERR_HANDSHAKE', `client, Y = ${p.slice(0, 8)}…`)
  }
})
