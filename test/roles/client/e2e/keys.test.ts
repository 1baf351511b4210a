// Identity keys: generation, raw <-> KeyObject conversions, the server's base64 shape,
// length and encoding checks with their exact messages, and the fingerprint (checked
// against a hand-computed SHA-256 and a fixed RFC 8032 / RFC 7748 key).

import t from 'tap'
import { createHash, sign, verify } from 'node:crypto'
import {
  generateIdentity, humanFingerprint, identityFromPrivate, keyFingerprint, keyPairFromPrivate,
  normalizeUserKeys, privateKeyObject, publicKeyObject, publicKeys, rawKey, rawPrivate, rawPublic
} from '../../../../src/roles/client/e2e/keys.js'

t.test('generateIdentity gives raw 32-byte keys that work', async t => {
  const id = generateIdentity()
  for (const k of [id.enc.publicKey, id.enc.privateKey, id.sign.publicKey, id.sign.privateKey]) t.equal(k.length, 32)
  const sig = sign(null, Buffer.from('m'), privateKeyObject('Ed25519', id.sign.privateKey))
  t.ok(verify(null, Buffer.from('m'), publicKeyObject('Ed25519', id.sign.publicKey), sig))
  t.same(identityFromPrivate(id.enc.privateKey, id.sign.privateKey), id, 'the private keys determine the identity')
  t.same(rawPrivate(privateKeyObject('X25519', id.enc.privateKey)), id.enc.privateKey, 'raw -> KeyObject -> raw')
  t.same(rawPublic(publicKeyObject('X25519', id.enc.publicKey)), id.enc.publicKey)
  t.not(generateIdentity().enc.publicKey.toString('hex'), id.enc.publicKey.toString('hex'))
})

t.test('RFC vectors: raw private -> public', async t => {
  // RFC 7748 §6.1 (Alice) and RFC 8032 §7.1 test 1
  t.equal(keyPairFromPrivate('X25519', Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex')).publicKey.toString('hex'),
    '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
  t.equal(keyPairFromPrivate('Ed25519', Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex')).publicKey.toString('hex'),
    'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
})

t.test('publicKeys and fingerprint', async t => {
  const id = generateIdentity()
  const pub = publicKeys(id)
  t.same(pub, { enc: id.enc.publicKey.toString('base64'), sign: id.sign.publicKey.toString('base64') })
  const want = createHash('sha256').update(Buffer.concat([id.enc.publicKey, id.sign.publicKey])).digest('hex')
  t.equal(keyFingerprint(pub), want, 'SHA-256 over raw enc ‖ sign')
  t.equal(keyFingerprint({ enc: id.enc.publicKey, sign: id.sign.publicKey }), want, 'raw or base64 alike')
  t.not(keyFingerprint({ enc: pub.sign, sign: pub.enc }), want, 'order matters')
  const human = humanFingerprint(want)
  t.match(human, /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/)
  t.equal(human.replace(/ /g, ''), want)
  t.throws(() => humanFingerprint('ABC'), { code: 'MM_ERR_BAD_KEY' })
  t.same(normalizeUserKeys({ enc: id.enc.publicKey, sign: id.sign.publicKey }), pub)
})

t.test('lengths and encodings are checked where keys enter', async t => {
  t.throws(() => rawKey(Buffer.alloc(31), 'X25519 public key'),
    { code: 'MM_ERR_LENGTH', message: 'expected X25519 public key of 32 bytes, got length=31' })
  t.throws(() => publicKeyObject('Ed25519', Buffer.alloc(33)),
    { code: 'MM_ERR_LENGTH', message: 'expected Ed25519 public key of 32 bytes, got length=33' })
  t.throws(() => privateKeyObject('X25519', Buffer.alloc(0)),
    { code: 'MM_ERR_LENGTH', message: 'expected X25519 private key of 32 bytes, got length=0' })
  const b64 = Buffer.alloc(32, 7).toString('base64')
  t.same(rawKey(b64, 'k'), Buffer.alloc(32, 7))
  for (const bad of ['', b64.slice(0, -1), b64 + '=', Buffer.alloc(32, 7).toString('base64url'), ' ' + b64, Buffer.alloc(31).toString('base64')]) {
    t.throws(() => rawKey(bad, 'k'), { code: 'MM_ERR_BAD_KEY' }, JSON.stringify(bad))
  }
  // last char with unused bits set: decodes to the same bytes, but is not canonical
  t.throws(() => rawKey(b64.slice(0, -2) + 'd=', 'k'), { code: 'MM_ERR_BAD_KEY' })
  t.throws(() => normalizeUserKeys({ enc: b64, sign: 'nope' }), { code: 'MM_ERR_BAD_KEY' })
  t.throws(() => normalizeUserKeys(null as never), { code: 'MM_ERR_BAD_KEY' })
})
