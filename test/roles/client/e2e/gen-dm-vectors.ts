// Regenerates test/fixtures/vectors/dm.json from sealDmDeterministic with fixed inputs
// (private keys and randomness derived from labels with SHA-256). Run only when the
// envelope format changes on purpose: `node --import tsx test/roles/client/e2e/gen-dm-vectors.ts`.
// dm-vectors.test.ts checks the stored bytes on every run; this file is not a test.

import { createHash, diffieHellman, hkdfSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { sealDmDeterministic, WRAP_INFO } from '../../../../src/roles/client/e2e/dm.js'
import { keyPairFromPrivate, privateKeyObject, publicKeyObject } from '../../../../src/roles/client/e2e/keys.js'

const seed = (label: string) => createHash('sha256').update(`marshmello dm vector: ${label}`).digest()

const cases = [
  { name: 'alice to bob, ascii', sender: 'alice', recipient: 'bob', clientId: 'c-0001', sentAt: 1700000000000, text: 'hello bob' },
  { name: 'bob to alice, unicode', sender: 'bob', recipient: 'alice', clientId: '3f2b6c1e-9a1d-4c55-8f0e-2a9d7b1c0e44', sentAt: 1700000123456, text: 'héllo 🌼 — ✓ ünïcode' },
  { name: 'alice to herself, empty text', sender: 'alice', recipient: 'alice', clientId: 'x', sentAt: 0, text: '' }
]

const vectors = cases.map(c => {
  const senderEncPrivate = seed(`${c.sender} enc`)
  const senderSignPrivate = seed(`${c.sender} sign`)
  const recipientEncPrivate = seed(`${c.recipient} enc`)
  const contentKey = seed(`${c.name} content key`)
  const recipientEphemeral = seed(`${c.name} recipient ephemeral`)
  const senderEphemeral = seed(`${c.name} sender ephemeral`)
  const senderEnc = keyPairFromPrivate('X25519', senderEncPrivate).publicKey
  const senderSign = keyPairFromPrivate('Ed25519', senderSignPrivate).publicKey
  const recipientEnc = keyPairFromPrivate('X25519', recipientEncPrivate).publicKey
  const body = sealDmDeterministic({
    from: c.sender, to: c.recipient, clientId: c.clientId, sentAt: c.sentAt, text: c.text,
    senderSign: senderSignPrivate, recipientEnc, senderEnc, contentKey, recipientEphemeral, senderEphemeral
  })
  const wrapKey = (eph: Buffer, to: Buffer) => {
    const ephPub = keyPairFromPrivate('X25519', eph).publicKey
    const shared = diffieHellman({ privateKey: privateKeyObject('X25519', eph), publicKey: publicKeyObject('X25519', to) })
    return Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), Buffer.concat([WRAP_INFO, ephPub, to]), 32)).toString('hex')
  }
  const hex = (b: Buffer) => b.toString('hex')
  return {
    name: c.name,
    input: {
      from: c.sender, to: c.recipient, clientId: c.clientId, sentAt: c.sentAt, text: c.text,
      textHex: Buffer.from(c.text, 'utf8').toString('hex'),
      senderEncPrivate: hex(senderEncPrivate),
      senderSignPrivate: hex(senderSignPrivate),
      recipientEncPrivate: hex(recipientEncPrivate),
      contentKey: hex(contentKey),
      recipientEphemeral: hex(recipientEphemeral),
      senderEphemeral: hex(senderEphemeral)
    },
    derived: {
      senderEncPublic: hex(senderEnc),
      senderSignPublic: hex(senderSign),
      recipientEncPublic: hex(recipientEnc),
      recipientWrapKey: wrapKey(recipientEphemeral, recipientEnc),
      senderWrapKey: wrapKey(senderEphemeral, senderEnc)
    },
    expected: { envelope: Buffer.from(body, 'base64url').toString('hex'), body }
  }
})

const out = fileURLToPath(new URL('../../../fixtures/vectors/dm.json', import.meta.url))
writeFileSync(out, JSON.stringify({
  description: 'DM envelope v1 (docs/PROTOCOL.md): sealDmDeterministic(input) must equal expected byte for byte',
  vectors
}, null, 2) + '\n')
process.stdout.write(`wrote ${vectors.length} vectors to ${out}\n`)
