// Sealed sender at the server (PROTOCOL §12) through the gateway function on a fake clock:
// sender certificates a recipient checks offline, sealed sends with no JWT authorised by
// a delivery token or an anonymous Privacy Pass token (a missing, wrong or spent one is
// refused with its code), the strangers switch, one circuit per kind of request, only
// padded envelopes stored, coarse receive times, and DMs deleted on acknowledgement or
// by the retention sweep.
import t from 'tap'
import { clockedStack, gw, PASSWORD, type ClockedStack } from './helpers.js'
import { generateIdentity, publicKeys } from '../../../../src/roles/client/e2e/keys.js'
import { accessVerifier, deliveryTokenFor, openSealed, sealFor } from '../../../../src/roles/client/e2e/sealed.js'
import { requestTokens } from '../../../../src/onion/crypto/privacy-pass.js'
import { randomBytes } from '../../../../src/onion/crypto/primitives.js'
import { SEALED_FROM } from '../../../../src/roles/server/api/sealed.js'
import { settle } from '../../../helpers/fake-clock.js'

let circuitSeq = 0
const circuit = () => `c${++circuitSeq}`

async function account (s: ClockedStack, name: string) {
  const id = generateIdentity()
  const c = circuit()
  t.equal((await gw(s.gateway, 'POST', '/v1/auth/register', { circuit: c, body: { username: name, password: PASSWORD, keys: publicKeys(id) } })).status, 201)
  const login = await gw(s.gateway, 'POST', '/v1/auth/login', { circuit: c, body: { username: name, password: PASSWORD } })
  const token = login.json.token as string
  const accessKey = randomBytes(16)
  t.equal((await gw(s.gateway, 'PUT', '/v1/dms/settings', { circuit: c, token, body: { verifier: accessVerifier(accessKey), allowStrangers: true } })).status, 204)
  const cert = await gw(s.gateway, 'POST', '/v1/dms/certificate', { circuit: c, token })
  t.equal(cert.status, 200)
  return { name, id, token, accessKey, circuit: c, cert: Buffer.from(cert.json.certificate, 'base64') }
}

type Account = Awaited<ReturnType<typeof account>>

const envelope = (from: Account, to: Account, text = 'hi') => sealFor({
  recipientIdentity: to.id.enc.publicKey, senderIdentityPrivate: from.id.enc.privateKey, senderCertificate: from.cert, accessKey: from.accessKey, inner: Buffer.from(text),
})

/** a batch of anonymous tokens for `a`: the key fetched anonymously, issuance on a's own circuit */
async function tokens (s: ClockedStack, a: Account, n: number): Promise<string[]> {
  const key = await gw(s.gateway, 'GET', '/v1/dms/token-key', { circuit: circuit() })
  t.equal(key.status, 200)
  const r = await requestTokens(Buffer.from(key.json.publicKey, 'base64'), n)
  const issued = await gw(s.gateway, 'POST', '/v1/dms/tokens', { circuit: a.circuit, token: a.token, body: { requests: r.requests.map((q) => q.toString('base64')) } })
  t.equal(issued.status, 200, issued.raw)
  return (await r.finish(issued.json.responses.map((x: string) => Buffer.from(x, 'base64')))).map((x) => x.toString('base64url'))
}

t.test('a sealed DM with a delivery token: stored without its sender, opened and checked by the recipient', async (t) => {
  const s = await clockedStack(t)
  const alice = await account(s, 'alice')
  const bob = await account(s, 'bob')
  const anon = circuit()
  const body = envelope(alice, bob, 'hello bob')
  const sent = await gw(s.gateway, 'POST', '/v1/dms/sealed', { circuit: anon, body: { to: 'bob', envelope: body, deliveryToken: deliveryTokenFor(bob.accessKey) } })
  t.equal(sent.status, 201, sent.raw)
  t.equal(sent.json.receivedAt % 3600_000, 0, 'the server keeps an hour, not the moment')
  const retry = await gw(s.gateway, 'POST', '/v1/dms/sealed', { circuit: anon, body: { to: 'bob', envelope: body, deliveryToken: deliveryTokenFor(bob.accessKey) } })
  t.equal(retry.status, 200, 'a retry of the same bytes is stored once')
  t.equal(retry.json.id, sent.json.id)

  const rows = []
  for await (const m of s.messages.all()) rows.push(m)
  t.equal(rows.length, 1)
  t.equal(rows[0].from, SEALED_FROM, 'the stored row names no sender')
  t.notMatch(JSON.stringify(rows[0]), /alice/, 'alice appears nowhere in it')

  const inbox = await gw(s.gateway, 'GET', '/v1/dms', { circuit: bob.circuit, token: bob.token })
  const m = inbox.json.messages[0]
  const opened = openSealed(m.body, { myIdentityPrivate: bob.id.enc.privateKey, pinnedRoot: s.rootFingerprint, now: s.clock.now() })
  t.equal(opened.sender, 'alice')
  t.equal(opened.inner.toString(), 'hello bob')
  t.ok(opened.accessKey?.equals(alice.accessKey), 'alice\'s access key travels inside, for bob\'s answer')
  t.ok(opened.senderIdentity.equals(alice.id.enc.publicKey))

  // the recipient's copy is gone once acknowledged; someone else's acknowledgement deletes nothing
  t.equal((await gw(s.gateway, 'POST', '/v1/dms/ack', { circuit: alice.circuit, token: alice.token, body: { ids: [m.id] } })).json.deleted, 0)
  t.equal((await gw(s.gateway, 'POST', '/v1/dms/ack', { circuit: bob.circuit, token: bob.token, body: { ids: [m.id] } })).json.deleted, 1)
  t.equal(await s.messages.count(), 0, 'deleted on acknowledgement')
})

t.test('certificates: checked offline, expired or altered ones refused', async (t) => {
  const s = await clockedStack(t)
  const alice = await account(s, 'alice')
  const bob = await account(s, 'bob')
  const open = (body: string, now = s.clock.now(), root = s.rootFingerprint) => openSealed(body, { myIdentityPrivate: bob.id.enc.privateKey, pinnedRoot: root, now })
  t.equal(open(envelope(alice, bob)).sender, 'alice')
  t.throws(() => open(envelope(alice, bob), s.clock.now() + 24 * 3600_000 + 1), { code: 'MM_ERR_SENDER_CERT', reason: 'expired' }, 'expires within 24 h')
  t.throws(() => open(envelope(alice, bob), s.clock.now(), 'ab'.repeat(32)), { code: 'MM_ERR_SENDER_CERT', reason: 'untrusted-root' }, 'only the pinned directory key is a root')
  for (const [at, what] of [[5, 'username'], [20, 'identity key'], [60, 'server certificate'], [-1, 'signature']] as const) {
    const cert = Buffer.from(alice.cert)
    cert[at < 0 ? cert.length + at : at] ^= 1
    const body = sealFor({ recipientIdentity: bob.id.enc.publicKey, senderIdentityPrivate: alice.id.enc.privateKey, senderCertificate: cert, inner: Buffer.from('x') })
    t.throws(() => open(body), { code: 'MM_ERR_SENDER_CERT' }, `a flipped bit in the ${what} is refused`)
  }
  // mallory seals with her own identity key but alice's certificate
  const mallory = generateIdentity()
  const forged = sealFor({ recipientIdentity: bob.id.enc.publicKey, senderIdentityPrivate: mallory.enc.privateKey, senderCertificate: alice.cert, inner: Buffer.from('I am alice') })
  t.throws(() => open(forged), { code: 'MM_ERR_SENDER_CERT', reason: 'identity-mismatch' }, 'a certificate for another key than the one that sealed it')
  const flipped = Buffer.from(envelope(alice, bob), 'base64url')
  flipped[100] ^= 1
  t.throws(() => open(flipped.toString('base64url')), { code: 'MM_ERR_SEALED' }, 'an altered envelope does not open')
  t.throws(() => openSealed(envelope(alice, bob), { myIdentityPrivate: alice.id.enc.privateKey, pinnedRoot: s.rootFingerprint, now: s.clock.now() }), { code: 'MM_ERR_SEALED' }, 'nor for anyone else')
})

t.test('sealed sends are refused without a token, with a bad or spent one, with a JWT, or on an identified circuit', async (t) => {
  const s = await clockedStack(t)
  const alice = await account(s, 'alice')
  const bob = await account(s, 'bob')
  const send = (body: object, o: { circuit?: string, token?: string } = {}) => gw(s.gateway, 'POST', '/v1/dms/sealed', { circuit: o.circuit ?? circuit(), token: o.token, body: { to: 'bob', envelope: envelope(alice, bob), ...body } })
  const codes = async (p: ReturnType<typeof send>) => { const r = await p; return [r.status, r.json?.error?.code] }

  t.same(await codes(send({})), [401, 'MM_ERR_SEALED_UNAUTHORIZED'], 'no token')
  t.same(await codes(send({ deliveryToken: deliveryTokenFor(randomBytes(16)) })), [403, 'MM_ERR_DELIVERY_TOKEN'], 'a wrong delivery token')
  t.same(await codes(send({ deliveryToken: 'AAAA' })), [400, 'MM_ERR_BAD_INPUT'], 'a malformed one')
  t.same(await codes(send({ anonToken: 'A'.repeat(400) })), [403, 'MM_ERR_ANON_TOKEN'], 'an anonymous token that does not verify')
  t.same(await codes(send({ deliveryToken: deliveryTokenFor(bob.accessKey) }, { token: alice.token })), [400, 'MM_ERR_SEALED_IDENTIFIED'], 'a sealed send with a JWT')
  t.same(await codes(send({ deliveryToken: deliveryTokenFor(bob.accessKey) }, { circuit: alice.circuit })), [400, 'MM_ERR_CIRCUIT_MIXED'], 'on the circuit alice signed in on')
  const anon = circuit()
  t.equal((await send({ deliveryToken: deliveryTokenFor(bob.accessKey) }, { circuit: anon })).status, 201)
  t.same(await codes(gw(s.gateway, 'GET', '/v1/dms', { circuit: anon, token: bob.token })), [400, 'MM_ERR_CIRCUIT_MIXED'], 'and no JWT on a circuit that carried a sealed send')
  const unpadded = sealFor({ recipientIdentity: bob.id.enc.publicKey, senderIdentityPrivate: alice.id.enc.privateKey, senderCertificate: alice.cert, inner: Buffer.from('x') })
  const cut = Buffer.from(unpadded, 'base64url').subarray(0, 500).toString('base64url')
  t.same(await codes(send({ envelope: cut, deliveryToken: deliveryTokenFor(bob.accessKey) })), [400, 'MM_ERR_SEALED'], 'an envelope of no padded size is not stored')

  // a stranger pays with an anonymous token, once
  const [tok, tok2] = await tokens(s, alice, 2)
  t.equal((await send({ anonToken: tok })).status, 201, 'a stranger\'s first message with an anonymous token')
  t.same(await codes(send({ anonToken: tok })), [403, 'MM_ERR_ANON_TOKEN_SPENT'], 'the same token on another message')
  // bob turns strangers away
  t.equal((await gw(s.gateway, 'PUT', '/v1/dms/settings', { circuit: bob.circuit, token: bob.token, body: { verifier: accessVerifier(bob.accessKey), allowStrangers: false } })).status, 204)
  t.same(await codes(send({ anonToken: tok2 })), [403, 'MM_ERR_STRANGERS_REFUSED'], 'strangers off: refused')
  t.equal((await send({ deliveryToken: deliveryTokenFor(bob.accessKey) })).status, 201, 'contacts still get through')
  t.same((await gw(s.gateway, 'GET', '/v1/dms/settings', { circuit: bob.circuit, token: bob.token })).json, { allowStrangers: false, hasDeliveryToken: true })
  t.same(await codes(gw(s.gateway, 'POST', '/v1/dms/sealed', { circuit: circuit(), body: { to: 'nobody', envelope: envelope(alice, bob), anonToken: tok2 } })), [404, 'MM_ERR_USER_UNKNOWN'])
})

t.test('anonymous tokens: a budget per account and epoch, old epochs refused', async (t) => {
  const s = await clockedStack(t, { anonTokens: { perAccount: 3, maxBatch: 2, epochMs: 3600_000 } })
  const alice = await account(s, 'alice')
  const bob = await account(s, 'bob')
  const key = await gw(s.gateway, 'GET', '/v1/dms/token-key', { circuit: circuit() })
  const r = await requestTokens(Buffer.from(key.json.publicKey, 'base64'), 3)
  const ask = (reqs: Buffer[]) => gw(s.gateway, 'POST', '/v1/dms/tokens', { circuit: alice.circuit, token: alice.token, body: { requests: reqs.map((q) => q.toString('base64')) } })
  t.equal((await ask(r.requests)).status, 400, 'more than a batch at once is refused by the schema')
  t.equal((await ask(r.requests.slice(0, 2))).status, 200)
  t.equal((await ask(r.requests.slice(0, 2))).json.error.code, 'MM_ERR_ANON_TOKEN_BUDGET', 'past the budget')
  t.equal((await gw(s.gateway, 'GET', '/v1/dms/token-key', { circuit: circuit(), token: alice.token })).json.error.code, 'MM_ERR_SEALED_IDENTIFIED', 'the key is fetched anonymously')
  t.equal((await gw(s.gateway, 'POST', '/v1/dms/tokens', { circuit: circuit(), body: { requests: ['AAAA'] } })).status, 401, 'issuance needs an account')

  const [old] = await tokens(s, bob, 1)
  await s.clock.advance(2 * 3600_000 + 1)
  const late = await gw(s.gateway, 'POST', '/v1/dms/sealed', { circuit: circuit(), body: { to: 'alice', envelope: envelope(bob, alice), anonToken: old } })
  t.equal(late.json.error.code, 'MM_ERR_ANON_TOKEN', 'a token two epochs old is refused')
  t.ok((await tokens(s, bob, 1)).length === 1, 'and a new epoch brings a new budget')
})

t.test('padding: every sealed plaintext is one of four sizes', async (t) => {
  const s = await clockedStack(t)
  const alice = await account(s, 'alice')
  const bob = await account(s, 'bob')
  const sizes = new Set<number>()
  for (const n of [0, 1, 100, 700, 800, 3000, 5000, 15000, 20000]) {
    sizes.add(Buffer.from(envelope(alice, bob, 'x'.repeat(n)), 'base64url').length)
  }
  t.same([...sizes].sort((a, b) => a - b), [1024, 4096, 16384, 32768].map((b) => b + 97), 'nine lengths, four sizes on the wire')
  t.throws(() => envelope(alice, bob, 'x'.repeat(33000)), { code: 'MM_ERR_TOO_LARGE' })
})

t.test('retention: an unacknowledged DM is swept after the retention period', async (t) => {
  const s = await clockedStack(t, { dmRetentionMs: 3 * 24 * 3600_000 })
  const alice = await account(s, 'alice')
  const bob = await account(s, 'bob')
  t.equal((await gw(s.gateway, 'POST', '/v1/dms/sealed', { circuit: circuit(), body: { to: 'bob', envelope: envelope(alice, bob), deliveryToken: deliveryTokenFor(bob.accessKey) } })).status, 201)
  await s.clock.advance(3 * 24 * 3600_000 - 120_000)
  t.equal(await s.messages.count(), 1, 'kept within the period')
  await s.clock.advance(240_000)
  for (let i = 0; i < 100 && (await s.messages.count()) > 0; i++) await settle()
  t.equal(await s.messages.count(), 0, 'swept after it, on the injected clock')
})
