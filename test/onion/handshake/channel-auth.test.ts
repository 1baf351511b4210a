// The AUTH channel cell (docs/PROTOCOL.md §2.3): the recorded AUTH verifies, and its
// signature checks with raw node:crypto over the documented transcript; a fresh AUTH
// padded into a whole cell verifies; the same AUTH checked against another connection's
// exporter, another responder, another key, an unlisted fingerprint, a flipped bit or a
// truncated body is refused with MM_ERR_AUTH_SIGNATURE / MM_ERR_AUTH_UNLISTED / MM_ERR_LENGTH.
import t from 'tap'
import { constants, createPublicKey, verify } from 'node:crypto'
import {
  AUTH_HEADER, AUTH_LABEL, MAX_AUTH_SIGNATURE, authTranscript, decodeAuth, encodeAuth, verifyAuth,
} from '../../../src/onion/handshake/channel-auth.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { rsaFingerprint, rsaGenerate, randomBytes } from '../../../src/onion/crypto/primitives.js'
import { codeOf, fixedIdentity, flipBit, hex, tally, vectors } from '../helpers.js'

const v = vectors('onion-channel-auth.json')
const id = fixedIdentity
const fpHex = id.fingerprint.toString('hex')
/** a consensus listing only the recorded identity */
const listed = (fp: string): Buffer | undefined => fp === fpHex ? id.publicDer : undefined
const check = (data: Uint8Array, o: { responder?: Buffer, exporter?: Buffer, identityKey?: (fp: string) => Uint8Array | undefined } = {}) =>
  verifyAuth({ data, responderFingerprint: o.responder ?? hex(v.responderFingerprint), exporter: o.exporter ?? hex(v.exporter), identityKey: o.identityKey ?? listed })

t.test('vector: the recorded AUTH', async t => {
  t.equal(v.initiatorFingerprint, fpHex, 'signed by the identity of onion-handshake.json')
  const transcript = authTranscript(id.fingerprint, hex(v.responderFingerprint), hex(v.exporter))
  t.equal(transcript.toString('hex'), v.transcript, 'transcript = label ‖ initiator ‖ responder ‖ exporter')
  t.equal(AUTH_LABEL.toString('latin1'), 'marshmello/v1 link auth\0')
  t.equal(transcript.length, AUTH_LABEL.length + 96)
  const data = hex(v.data)
  const body = decodeAuth(data)
  t.equal(body.fingerprint.toString('hex'), fpHex, 'fingerprint at 0..32')
  t.equal(data.readUInt16BE(32), 256, 'sigLen u16 at 32: an RSA-2048 signature')
  t.equal(body.signature.length, 256)
  t.equal(data.length, AUTH_HEADER + 256)
  // the documented algorithm, with node:crypto directly: RSA-PSS, SHA-256, salt 32
  const key = createPublicKey({ key: id.publicDer, format: 'der', type: 'spki' })
  t.ok(verify('sha256', transcript, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, body.signature), 'RSA-PSS-SHA256 (salt 32) over the transcript')
  t.equal(check(data), fpHex, 'verifyAuth returns the proven fingerprint')
})

t.test('a fresh AUTH, padded into a whole channel cell, verifies; padding is ignored', async t => {
  const exporter = randomBytes(32)
  const responder = randomBytes(32)
  const data = encodeAuth({ identityPrivate: id.privateDer, fingerprint: id.fingerprint, responderFingerprint: responder, exporter })
  const cell = decodeChannelCell(encodeChannelCell(1, ChannelCommand.AUTH, data))
  t.equal(cell.cmd, ChannelCommand.AUTH)
  t.equal(cell.cmd, 5, 'AUTH is channel command 5')
  t.equal(check(cell.data, { responder, exporter }), fpHex)
  t.not(encodeAuth({ identityPrivate: id.privateDer, fingerprint: id.fingerprint, responderFingerprint: responder, exporter }).toString('hex'), data.toString('hex'), 'PSS: two signatures differ')
})

t.test('refusals, each with its code', async t => {
  const data = hex(v.data)
  const other = rsaGenerate(2048)
  const otherFp = rsaFingerprint(other.publicDer)
  t.equal(codeOf(() => check(data, { exporter: flipBit(hex(v.exporter), 0) })), 'MM_ERR_AUTH_SIGNATURE', 'another TLS connection (exporter): a replay elsewhere fails')
  t.equal(codeOf(() => check(data, { responder: randomBytes(32) })), 'MM_ERR_AUTH_SIGNATURE', 'another responder: an AUTH meant for one hop fails at another')
  t.equal(codeOf(() => check(data, { identityKey: () => undefined })), 'MM_ERR_AUTH_UNLISTED', 'a fingerprint the consensus does not list')
  t.equal(codeOf(() => check(data, { identityKey: () => other.publicDer })), 'MM_ERR_AUTH_SIGNATURE', 'a lookup that returns a key other than the named one')
  // an unlisted relay signs with its own key but claims the listed fingerprint
  const forged = encodeAuth({ identityPrivate: other.privateDer, fingerprint: id.fingerprint, responderFingerprint: hex(v.responderFingerprint), exporter: hex(v.exporter) })
  t.equal(codeOf(() => check(forged)), 'MM_ERR_AUTH_SIGNATURE', 'a listed fingerprint signed with another key')
  // the same relay, honestly named, but not listed
  const stranger = encodeAuth({ identityPrivate: other.privateDer, fingerprint: otherFp, responderFingerprint: hex(v.responderFingerprint), exporter: hex(v.exporter) })
  t.equal(codeOf(() => check(stranger)), 'MM_ERR_AUTH_UNLISTED', 'a valid proof by an unlisted key')
  t.equal(check(stranger, { identityKey: (fp) => fp === otherFp.toString('hex') ? other.publicDer : undefined }), otherFp.toString('hex'), '(the same proof verifies once that key is listed)')
})

t.test('every bit flip of the signature or fingerprint is refused', async t => {
  const data = hex(v.data)
  const sig: string[] = []
  for (let bit = AUTH_HEADER * 8; bit < data.length * 8; bit++) sig.push(codeOf(() => check(flipBit(data, bit))))
  t.same(tally(sig), { MM_ERR_AUTH_SIGNATURE: 256 * 8 }, 'signature bits')
  const fp: string[] = []
  for (let bit = 0; bit < 32 * 8; bit++) fp.push(codeOf(() => check(flipBit(data, bit))))
  t.same(tally(fp), { MM_ERR_AUTH_UNLISTED: 256 }, 'fingerprint bits (no other listed relay)')
  // with the flipped fingerprint listed under the same key, the transcript differs: signature
  const flipped = flipBit(data, 3)
  t.equal(codeOf(() => check(flipped, { identityKey: () => id.publicDer })), 'MM_ERR_AUTH_SIGNATURE')
})

t.test('truncated bodies and lengths out of range are MM_ERR_LENGTH', async t => {
  const data = hex(v.data)
  const out: string[] = []
  for (let n = 0; n < data.length; n++) out.push(codeOf(() => check(data.subarray(0, n))))
  t.same(tally(out), { MM_ERR_LENGTH: data.length }, 'every prefix shorter than fingerprint ‖ sigLen ‖ signature')
  for (const n of [0, MAX_AUTH_SIGNATURE + 1, 0xffff]) {
    const c = Buffer.concat([data, Buffer.alloc(2043 - data.length)])
    c.writeUInt16BE(n, 32)
    t.equal(codeOf(() => check(c)), 'MM_ERR_LENGTH', `sigLen ${n}`)
  }
  t.equal(codeOf(() => check(data, { exporter: randomBytes(31) })), 'MM_ERR_LENGTH', 'a 31-byte exporter value')
  t.equal(codeOf(() => check(data, { responder: randomBytes(33) })), 'MM_ERR_LENGTH', 'a 33-byte responder fingerprint')
  t.equal(codeOf(() => encodeAuth({ identityPrivate: id.privateDer, fingerprint: id.fingerprint.subarray(1), responderFingerprint: randomBytes(32), exporter: randomBytes(32) })), 'MM_ERR_LENGTH', 'encode: a 31-byte fingerprint')
})
