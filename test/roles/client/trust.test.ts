// Trust on first use of contacts' keys, on a live network (server + 3 relays): once a
// contact's changed key has been seen (a lookup, or a DM starting a session with it),
// sending refuses before anything leaves (MM_ERR_KEY_CHANGED), DMs from the new key are
// shown with a warning and never as verified, and /trust (ChatClient.trust) accepts the
// new key, after which they open. A DM body with one flipped bit is shown as unverified
// with no text, never as genuine; a replayed DM under a new server id is refused.
import t from 'tap'
import { tmp } from '../../helpers/net.js'
import { newClientId, type ChatClient } from '../../../src/roles/client/chat-client.js'
import { generateIdentity, keyFingerprint, publicKeys } from '../../../src/roles/client/e2e/keys.js'
import { sealDm } from '../../../src/roles/client/e2e/dm.js'
import { createProfile, unlockProfile } from '../../../src/roles/client/profile/identity.js'
import { liveNetwork } from './net-helper.js'

const live = liveNetwork(t)
const client = (home: string) => live.client(home)

/** DMs as the server stores them for the caller (raw, undecrypted) */
const rawDms = async (c: ChatClient): Promise<{ id: string, from: string, to: string, body: string, sentAt: number }[]> =>
  (await c.call('GET', '/v1/dms?limit=200')).data.messages

t.test('a changed contact key is warned about and blocks sending until trusted', async (t) => {
  const alice = await client(tmp('mm-alice-'))
  await alice.register('alice', 'alice-password')
  await alice.login('alice', 'alice-password')
  const bob = await client(tmp('mm-bob-'))
  await bob.register('bob', 'bob-password')
  await bob.login('bob', 'bob-password')

  const w0 = await alice.whois('bob')
  t.equal(w0.status, 'new', 'first sight of bob: pinned')
  t.match(w0.fingerprint, /^[0-9a-f]{64}$/)
  await alice.sendDm('bob', 'hi bob')
  await bob.sendDm('alice', 'hi alice')
  const before = (await alice.readDms()).messages
  t.same(before.map((m) => [m.from, m.text, m.verified]), [['alice', 'hi bob', true], ['bob', 'hi alice', true]])

  // bob sets up a new device with a new identity: a plain login refuses to replace the
  // server's keys; one that says so explicitly publishes the new ones
  const newHome = tmp('mm-bob2-')
  const fresh = generateIdentity()
  await createProfile(newHome, 'bob', 'bob-password', fresh)
  const bob2 = await client(newHome)
  const oldKeys = (await alice.call('GET', '/v1/users/bob/keys')).data.keys
  await t.rejects(bob2.login('bob', 'bob-password'), { code: 'MM_ERR_KEYS_MISMATCH' }, 'never replaced silently')
  t.same((await alice.call('GET', '/v1/users/bob/keys')).data.keys, oldKeys, 'the server still lists bob\'s old keys')
  t.notOk(bob2.loggedIn, 'the refused login leaves no session')
  await bob2.login('bob', 'bob-password', { replaceKeys: true })
  const served = (await alice.call('GET', '/v1/users/bob/keys')).data.keys
  t.same(served, publicKeys(fresh), 'the server now lists bob\'s new keys')

  const w1 = await alice.whois('bob')
  t.equal(w1.status, 'changed')
  t.equal(w1.fingerprint, keyFingerprint(publicKeys(fresh)))
  const stored = (await rawDms(bob2)).length
  await t.rejects(alice.sendDm('bob', 'this must not be sent'), { code: 'MM_ERR_KEY_CHANGED' }, 'sending to a changed key is refused')
  t.equal((await rawDms(bob2)).length, stored, 'nothing reached the server')

  // bob (new device) writes; alice sees his new DM flagged, with no text, never verified;
  // the one she read before (from bob's old key) stays as she saw it
  await bob2.sendDm('alice', 'it is me, new phone')
  const fromBob = (await alice.readDms()).messages.filter((m) => m.from === 'bob')
  t.equal(fromBob.length, 2)
  t.same([fromBob[0].text, fromBob[0].verified], ['hi alice', true], 'the DM read before is kept from the local history')
  const flagged = fromBob[1]
  t.equal(flagged.verified, false, 'not verified')
  t.equal(flagged.text, null, 'no text shown')
  t.match(flagged.warning, /key changed/, 'a warning says why')

  const fp = await alice.trust('bob')
  t.equal(fp, keyFingerprint(publicKeys(fresh)), 'trust pins the new key')
  t.equal((await alice.whois('bob')).status, 'same')
  await alice.sendDm('bob', 'welcome back')
  const bobSees = (await bob2.readDms()).messages.find((m) => m.text === 'welcome back')
  t.ok(bobSees?.verified, 'bob on the new device reads alice\'s DM, verified')
  const after = (await alice.readDms()).messages
  const newOne = after.find((m) => m.from === 'bob' && m.text === 'it is me, new phone')
  t.ok(newOne?.verified, 'bob\'s DM from the new key is verified once trusted')
  const old = after.find((m) => m.id === before[1].id)
  t.same([old?.text, old?.verified], ['hi alice', true], 'the DM from bob\'s old key is shown as it was read then')
  t.notOk(JSON.stringify(await rawDms(alice)).includes('hi alice'), 'the server holds no plaintext')
})

t.test('a DM with one flipped bit is never shown as genuine', async (t) => {
  const home = tmp('mm-carol-')
  const carol = await client(home)
  await carol.register('carol', 'carol-password')
  await carol.login('carol', 'carol-password')
  const dan = await client(tmp('mm-dan-'))
  await dan.register('dan', 'dan-password')
  await dan.login('dan', 'dan-password')
  await carol.sendDm('dan', 'genuine')

  const me = await unlockProfile(home, 'carol', 'carol-password')
  const danKeys = (await carol.call('GET', '/v1/users/dan/keys')).data.keys
  const seal = (clientId: string, sentAt: number) => sealDm({ from: 'carol', to: 'dan', clientId, sentAt, text: 'pay 100 to carol', senderSign: me.sign.privateKey, recipientEnc: danKeys.enc, senderEnc: me.enc.publicKey })
  // The server no longer takes identified DMs (POST /v1/dms is gone), so what a hostile
  // server (or one still holding rows from before the upgrade) could answer is put into
  // the real server's answers to dan: envelope v1 rows with one bit flipped in the
  // header, a key wrap, the ciphertext and the signature, an untouched one, and below
  // the current format replayed under a new server id and with flipped bits.
  const injected: Array<{ id: string, from: string, to: string, clientId: string, body: string, sentAt: number }> = []
  const genuine = (await rawDms(dan)).at(-1)!
  const size = Buffer.from(seal(newClientId(), Date.now()), 'base64url').length
  const positions = [3, 60, size - 80, size - 1]
  for (const [i, pos] of positions.entries()) {
    const clientId = newClientId()
    const bytes = Buffer.from(seal(clientId, Date.now()), 'base64url')
    bytes[pos] ^= 0x04
    injected.push({ id: `${genuine.id}.${i}`, from: 'carol', to: 'dan', clientId, body: bytes.toString('base64url'), sentAt: Date.now() })
  }
  // the control: the same sealing, unmodified, is genuine
  const okId = newClientId()
  injected.push({ id: `${genuine.id}.${positions.length}`, from: 'carol', to: 'dan', clientId: okId, body: seal(okId, Date.now()), sentAt: Date.now() })

  await carol.sendDm('dan', 'session message')
  const current = (await rawDms(dan)).at(-1)!
  injected.push({ id: `${current.id}.r`, from: '', to: 'dan', clientId: 'replay', body: current.body, sentAt: current.sentAt })
  for (const pos of [5, 200, 1300]) {
    const bytes = Buffer.from(current.body, 'base64url')
    bytes[Math.min(pos, bytes.length - 1)] ^= 0x10
    injected.push({ id: `${current.id}.f${pos}`, from: '', to: 'dan', clientId: `flip-${pos}`, body: bytes.toString('base64url'), sentAt: current.sentAt })
  }
  const real = dan.call.bind(dan)
  dan.call = (async (method: string, path: string, ...rest: unknown[]) => {
    const res = await (real as (...a: unknown[]) => Promise<{ data: { messages: typeof injected } }>)(method, path, ...rest)
    if (method === 'GET' && path.startsWith('/v1/dms')) {
      res.data.messages = [...res.data.messages, ...injected].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    }
    return res
  }) as typeof dan.call
  const first = (await dan.readDms()).messages
  t.same(first.filter((m) => m.verified).map((m) => m.text), ['genuine', 'pay 100 to carol', 'session message'], 'only the untouched DMs are verified, each once')
  t.match(first.find((m) => m.id !== current.id && m.warning?.includes('replay'))?.warning, /replay/, 'the replay is refused as one')
  const again = (await dan.readDms()).messages
  t.same(again.map((m) => [m.id, m.text]), first.map((m) => [m.id, m.text]), 'read again (from the local history): the same, nothing shown twice')

  // the messages before: 'genuine', the tampered and the untouched envelope v1 (read with carol's pinned key)
  const msgs = first.slice(0, 2 + positions.length)
  t.same(msgs.filter((m) => m.verified).map((m) => m.text), ['genuine', 'pay 100 to carol'], 'only the untouched DMs are verified')
  const tampered = msgs.filter((m) => !m.verified)
  t.equal(tampered.length, positions.length)
  for (const m of tampered) {
    t.equal(m.text, null, 'no text from a tampered DM')
    t.type(m.warning, 'string')
  }
})
