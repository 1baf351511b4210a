// sealDm/openDm with fresh identities: round trips both ways, the sender rereading its own
// DM, and every way the server (or anyone) could alter, relabel, replay elsewhere, forge or
// mangle a body: each must come back verified:false with the right reason and text null.

import t from 'tap'
import { openDm, sealDm, type OpenDmInit } from '../../../../src/roles/client/e2e/dm.js'
import { MAX_TEXT_BYTES } from '../../../../src/roles/client/e2e/envelope.js'
import { generateIdentity, publicKeys, type Identity } from '../../../../src/roles/client/e2e/keys.js'

const alice = generateIdentity()
const bob = generateIdentity()
const mallory = generateIdentity()
const TEXT = 'meet at the usual place, 9pm'

function seal (from: string, fromId: Identity, to: string, toId: Identity, over: Partial<Parameters<typeof sealDm>[0]> = {}) {
  return sealDm({
    from, to, clientId: 'cid-1', sentAt: 1700000000000, text: TEXT,
    senderSign: fromId.sign.privateKey, recipientEnc: publicKeys(toId).enc, senderEnc: fromId.enc.publicKey, ...over
  })
}
function opener (me: string, meId: Identity, senderId: Identity, over: Partial<OpenDmInit> = {}): OpenDmInit {
  return { me, myEnc: meId.enc, from: 'alice', to: 'bob', clientId: 'cid-1', sentAt: 1700000000000, senderSignPub: publicKeys(senderId).sign, ...over }
}
const bobOpens = (body: string, over: Partial<OpenDmInit> = {}) => openDm(body, opener('bob', bob, alice, over))

t.test('round trips', async t => {
  const body = seal('alice', alice, 'bob', bob)
  t.match(body, /^[A-Za-z0-9_-]+$/, 'base64url')
  t.equal(Buffer.from(body, 'base64url').indexOf(Buffer.from('usual place')), -1, 'no plaintext in the envelope')
  t.same(bobOpens(body), { verified: true, text: TEXT }, 'alice -> bob, bob reads')
  t.same(openDm(body, opener('alice', alice, alice)), { verified: true, text: TEXT }, 'alice rereads her sent DM')

  const back = seal('bob', bob, 'alice', alice, { text: 'ok 👍' })
  t.same(openDm(back, opener('alice', alice, bob, { from: 'bob', to: 'alice' })), { verified: true, text: 'ok 👍' }, 'bob -> alice')
  t.same(openDm(back, opener('bob', bob, bob, { from: 'bob', to: 'alice' })), { verified: true, text: 'ok 👍' }, 'bob rereads')

  t.not(seal('alice', alice, 'bob', bob), body, 'fresh randomness each time')
  const long = 'x'.repeat(MAX_TEXT_BYTES)
  t.same(bobOpens(seal('alice', alice, 'bob', bob, { text: long })), { verified: true, text: long }, 'longest text')
})

t.test('a third party cannot read it', async t => {
  const body = seal('alice', alice, 'bob', bob)
  const r = openDm(body, opener('mallory', mallory, alice))
  t.same(r, { verified: false, text: null, reason: 'mismatch' }, 'not addressed to mallory')
  t.same(openDm(body, opener('bob', mallory, alice)), { verified: false, text: null, reason: 'undecryptable' }, 'wrong private key')
})

t.test('every flipped bit is rejected', async t => {
  const body = seal('alice', alice, 'bob', bob, { text: 'hi' })
  const bytes = Buffer.from(body, 'base64url')
  const headerEnd = 1 + 1 + 5 + 1 + 3 + 1 + 5 + 8
  const seen = new Set<string>()
  let wrong = 0
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const b = Buffer.from(bytes)
      b[i] ^= 1 << bit
      const r = bobOpens(b.toString('base64url'))
      seen.add(r.verified ? 'VERIFIED' : r.reason)
      const expected = i === 0 ? ['malformed'] : i >= headerEnd ? (i >= headerEnd + 160 && i < headerEnd + 164 ? ['malformed'] : ['bad-signature']) : ['malformed', 'bad-signature']
      if (r.verified || r.text !== null || !expected.includes(r.reason)) wrong++
    }
  }
  t.equal(wrong, 0, `all ${bytes.length * 8} one-bit changes rejected with the expected reason`)
  t.notOk(seen.has('VERIFIED'))
})

t.test('relabelled by the server: mismatch', async t => {
  const body = seal('alice', alice, 'bob', bob)
  t.same(bobOpens(body, { from: 'bob', to: 'alice' }), { verified: false, text: null, reason: 'mismatch' }, 'from/to swapped')
  t.same(bobOpens(body, { clientId: 'cid-2' }), { verified: false, text: null, reason: 'mismatch' }, 'another clientId')
  t.same(bobOpens(body, { sentAt: 1700000000001 }), { verified: false, text: null, reason: 'mismatch' }, 'another sentAt')
  t.same(bobOpens(body, { to: 'carol' }), { verified: false, text: null, reason: 'mismatch' }, 'replayed into another conversation')
})

t.test('forged or re-signed: bad-signature', async t => {
  const forged = seal('alice', mallory, 'bob', bob)
  t.same(bobOpens(forged), { verified: false, text: null, reason: 'bad-signature' }, 'signed by another key')
  const body = seal('alice', alice, 'bob', bob)
  t.same(bobOpens(body, { senderSignPub: publicKeys(mallory).sign }), { verified: false, text: null, reason: 'bad-signature' },
    'alice\'s current key is not the one that signed')
  // mallory splices alice's ciphertext under her own signature: still not alice's
  const a = Buffer.from(body, 'base64url')
  const spliced = Buffer.concat([a.subarray(0, a.length - 64), Buffer.from(forged, 'base64url').subarray(-64)])
  t.same(bobOpens(spliced.toString('base64url')), { verified: false, text: null, reason: 'bad-signature' })
})

t.test('undecryptable although signed', async t => {
  const bobNew = generateIdentity()
  const body = seal('alice', alice, 'bob', bob)
  t.same(openDm(body, opener('bob', bobNew, alice)), { verified: false, text: null, reason: 'undecryptable' },
    'bob rotated his key: the old DM no longer opens')
})

t.test('truncated, oversized, garbage: malformed, no throw', async t => {
  const body = seal('alice', alice, 'bob', bob)
  const bytes = Buffer.from(body, 'base64url')
  let wrong = 0
  for (let n = 0; n < bytes.length; n++) {
    const r = bobOpens(bytes.subarray(0, n).toString('base64url'))
    if (r.verified || r.reason !== 'malformed' || r.text !== null) wrong++
  }
  t.equal(wrong, 0, 'every truncation is malformed')
  const cases: Array<[string, unknown]> = [
    ['one byte appended', Buffer.concat([bytes, Buffer.of(0)]).toString('base64url')],
    ['huge', 'A'.repeat(200_000)],
    ['padded base64', body + '='],
    ['standard base64 chars', Buffer.from(bytes).toString('base64').replace(/[_-]/g, '+') + '+/'],
    ['whitespace', body.slice(0, 10) + ' ' + body.slice(10)],
    ['not canonical base64url', nonCanonical()],
    ['empty', ''],
    ['version 2', Buffer.concat([Buffer.of(2), bytes.subarray(1)]).toString('base64url')],
    ['random bytes', Buffer.from('not an envelope at all, just text').toString('base64url')],
    ['not a string', null],
    ['a number', 42]
  ]
  for (const [name, b] of cases) {
    const r = openDm(b as string, opener('bob', bob, alice))
    t.same(r, { verified: false, text: null, reason: 'malformed' }, name)
  }
})

/** A body whose last base64url char sets an unused bit: it decodes to a valid envelope. */
function nonCanonical (): string {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  for (let n = 1; ; n++) {
    const body = seal('alice', alice, 'bob', bob, { text: 'x'.repeat(n) })
    if (Buffer.from(body, 'base64url').length % 3 !== 1) continue
    const last = ALPHABET.indexOf(body.at(-1)!) // 2 data bits, 4 zero bits
    const mangled = body.slice(0, -1) + ALPHABET[last + 1]
    if (!Buffer.from(mangled, 'base64url').equals(Buffer.from(body, 'base64url'))) throw new Error('expected the same bytes')
    return mangled
  }
}

t.test('sealing refuses bad input', async t => {
  t.throws(() => seal('alice', alice, 'bob', bob, { text: 'x'.repeat(MAX_TEXT_BYTES + 1) }), { code: 'MM_ERR_BAD_DM' })
  t.throws(() => seal('alice', alice, 'bob', bob, { text: 'lone \ud800 surrogate' }), { code: 'MM_ERR_BAD_DM' })
  t.throws(() => seal('', alice, 'bob', bob), { code: 'MM_ERR_BAD_DM' })
  t.throws(() => seal('alice', alice, 'b'.repeat(256), bob), { code: 'MM_ERR_BAD_DM' })
  t.throws(() => seal('alice', alice, 'bob', bob, { sentAt: -1 }), { code: 'MM_ERR_BAD_DM' })
  t.throws(() => seal('alice', alice, 'bob', bob, { sentAt: 1.5 }), { code: 'MM_ERR_BAD_DM' })
  t.throws(() => seal('alice', alice, 'bob', bob, { recipientEnc: Buffer.alloc(31) }),
    { code: 'MM_ERR_LENGTH', message: 'expected X25519 public key of 32 bytes, got length=31' })
  t.throws(() => seal('alice', alice, 'bob', bob, { recipientEnc: Buffer.alloc(32) }), { code: 'MM_ERR_BAD_KEY' }, 'low-order point')
  t.throws(() => seal('alice', alice, 'bob', bob, { rng: () => Buffer.alloc(16) }), { code: 'MM_ERR_INTERNAL' })
})
