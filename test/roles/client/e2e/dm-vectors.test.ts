// Fixed vectors for the DM envelope (test/fixtures/vectors/dm.json): sealing the stored
// inputs reproduces the stored bytes exactly, both parties open them, and the bytes are
// re-read here by fixed offsets with raw node:crypto calls, so the documented layout and
// key derivation are checked independently of envelope.ts and dm.ts.

import t from 'tap'
import { createDecipheriv, createPublicKey, diffieHellman, hkdfSync, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { openDm, sealDmDeterministic } from '../../../../src/roles/client/e2e/dm.js'
import { keyPairFromPrivate, privateKeyObject } from '../../../../src/roles/client/e2e/keys.js'

interface Vector {
  name: string
  input: Record<string, string> & { sentAt: number }
  derived: Record<string, string>
  expected: { envelope: string, body: string }
}
const { vectors } = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/dm.json', import.meta.url), 'utf8')) as { vectors: Vector[] }
const hex = (s: string) => Buffer.from(s, 'hex')

t.equal(vectors.length, 3, 'the fixture holds the three vectors')

for (const v of vectors) {
  const i = v.input
  t.test(v.name, async t => {
    t.equal(Buffer.from(i.text, 'utf8').toString('hex'), i.textHex, 'text and its hex agree')
    t.equal(keyPairFromPrivate('X25519', hex(i.senderEncPrivate)).publicKey.toString('hex'), v.derived.senderEncPublic)
    t.equal(keyPairFromPrivate('Ed25519', hex(i.senderSignPrivate)).publicKey.toString('hex'), v.derived.senderSignPublic)
    t.equal(keyPairFromPrivate('X25519', hex(i.recipientEncPrivate)).publicKey.toString('hex'), v.derived.recipientEncPublic)

    const body = sealDmDeterministic({
      from: i.from, to: i.to, clientId: i.clientId, sentAt: i.sentAt, text: i.text,
      senderSign: hex(i.senderSignPrivate),
      recipientEnc: hex(v.derived.recipientEncPublic),
      senderEnc: hex(v.derived.senderEncPublic),
      contentKey: hex(i.contentKey),
      recipientEphemeral: hex(i.recipientEphemeral),
      senderEphemeral: hex(i.senderEphemeral)
    })
    t.equal(body, v.expected.body, 'sealing reproduces the stored body')
    t.equal(Buffer.from(body, 'base64url').toString('hex'), v.expected.envelope, 'byte for byte')

    const header = { from: i.from, to: i.to, clientId: i.clientId, sentAt: i.sentAt, senderSignPub: hex(v.derived.senderSignPublic) }
    const asRecipient = openDm(body, {
      ...header, me: i.to, myEnc: { publicKey: hex(v.derived.recipientEncPublic), privateKey: hex(i.recipientEncPrivate) }
    })
    t.same(asRecipient, { verified: true, text: i.text }, 'the recipient opens it')
    if (i.from !== i.to) {
      const asSender = openDm(body, {
        ...header, me: i.from, myEnc: { publicKey: hex(v.derived.senderEncPublic), privateKey: hex(i.senderEncPrivate) }
      })
      t.same(asSender, { verified: true, text: i.text }, 'the sender rereads it')
    }

    // independent reading of the layout (docs/PROTOCOL.md "DM envelope v1")
    const b = hex(v.expected.envelope)
    let off = 0
    const take = (n: number) => b.subarray(off, (off += n))
    t.equal(take(1)[0], 1, 'version 1')
    for (const f of [i.from, i.to, i.clientId]) t.equal(take(take(1)[0]).toString('utf8'), f)
    t.equal(Number(take(8).readBigUInt64BE()), i.sentAt, 'sentAt u64 BE')
    const headerBytes = b.subarray(0, off)
    const wraps = [
      { eph: take(32), sealed: take(48), pub: hex(v.derived.recipientEncPublic), priv: hex(i.recipientEncPrivate), want: v.derived.recipientWrapKey },
      { eph: take(32), sealed: take(48), pub: hex(v.derived.senderEncPublic), priv: hex(i.senderEncPrivate), want: v.derived.senderWrapKey }
    ]
    const contentLength = take(4).readUInt32BE()
    t.equal(contentLength, Buffer.byteLength(i.text) + 16)
    const content = take(contentLength)
    const signed = b.subarray(0, off)
    const signature = take(64)
    t.equal(off, b.length, 'nothing after the signature')

    for (const w of wraps) {
      const shared = diffieHellman({ privateKey: privateKeyObject('X25519', w.priv), publicKey: spki('302a300506032b656e032100', w.eph) })
      const key = Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), Buffer.concat([Buffer.from('marshmello/dm/v1'), w.eph, w.pub]), 32))
      t.equal(key.toString('hex'), w.want, 'wrap key = HKDF(dh, info = label ‖ eph ‖ recipient)')
      t.equal(gcmOpen(key, w.sealed, Buffer.alloc(0)).toString('hex'), i.contentKey, 'the wrap holds the content key')
    }
    t.equal(gcmOpen(hex(i.contentKey), content, headerBytes).toString('hex'), i.textHex, 'content = GCM(text, aad = header)')
    t.ok(verify(null, Buffer.concat([Buffer.from('marshmello/dm/v1/sig'), signed]), spki('302a300506032b6570032100', hex(v.derived.senderSignPublic)), signature),
      'Ed25519 over context ‖ everything before the signature')
  })
}

function spki (prefix: string, raw: Buffer) {
  return createPublicKey({ key: Buffer.concat([hex(prefix), raw]), format: 'der', type: 'spki' })
}

function gcmOpen (key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, Buffer.alloc(12))
  d.setAAD(aad)
  d.setAuthTag(sealed.subarray(sealed.length - 16))
  return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()])
}
