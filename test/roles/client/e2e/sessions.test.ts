// The client's DM sessions over the sealed profile file (e2e/sessions.ts, profile/dm-state.ts,
// PROTOCOL §11.5), without a network: a bundle made from one side's real upload starts a
// session; messages decrypt once, also after a restart (the state reloaded from disk); a
// used one-time prekey is gone; captured ciphertext cannot be read with the profile stolen
// after it was read (forward secrecy at rest); the state file holds no plaintext key and
// opens only with the identity (the password's keys).
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmp } from '../../../helpers/net.js'
import { generateIdentity, type Identity } from '../../../../src/roles/client/e2e/keys.js'
import { DmSessions, bundleFromWire, type PrekeyUploadWire } from '../../../../src/roles/client/e2e/sessions.js'
import { decodeContent, encodeContent, PAD_SIZES } from '../../../../src/roles/client/e2e/content.js'
import { DM_STATE_FILE } from '../../../../src/roles/client/profile/dm-state.js'

/** what the server would hand out for `u`: the first one-time keys of the upload */
function claim (identity: Identity, u: PrekeyUploadWire, n = 0) {
  return bundleFromWire({
    identity: { enc: identity.enc.publicKey.toString('base64'), sign: identity.sign.publicKey.toString('base64') },
    signedPrekey: u.signedPrekey,
    kemPrekey: { ...u.oneTimeKem![n], lastResort: false },
    oneTimePrekey: u.oneTime![n]
  })
}
const text = (b: Buffer) => decodeContent(b)?.text

t.test('a session from a real upload; decrypt once, also after a restart; stolen state reads nothing captured', async t => {
  const homeA = tmp('mm-sa-')
  const homeB = tmp('mm-sb-')
  const ia = generateIdentity()
  const ib = generateIdentity()
  const bob = await DmSessions.open(homeB, 'bob', ib)
  const upload = bob.makeUpload({ full: true, oneTime: 3, oneTimeKem: 3 })
  await bob.persist()
  const alice = await DmSessions.open(homeA, 'alice', ia)
  alice.startWith('bob', claim(ib, upload))
  const m1 = alice.encryptDm('bob', encodeContent({ sentAt: 1, text: 'first' }))
  const m2 = alice.encryptDm('bob', encodeContent({ sentAt: 2, text: 'second' }))
  t.ok([m1, m2].every(m => PAD_SIZES.includes((m.length - 1198 - 68 - 16) as typeof PAD_SIZES[number])), 'padded to a size class')

  const r2 = bob.decryptDm('alice', m2)
  if (!r2.ok) throw new Error(r2.reason)
  t.equal(text(r2.plaintext), 'second', 'out of order: the second first')
  t.ok(r2.newSession)
  const held = bob.oneTimeHeld
  r2.commit()
  t.same(bob.oneTimeHeld, { oneTime: held.oneTime - 1, oneTimeKem: held.oneTimeKem - 1 }, 'the one-time prekeys used are deleted (PQXDH §3.4)')
  const r1 = bob.decryptDm('alice', m1)
  if (!r1.ok) throw new Error(r1.reason)
  r1.commit()
  t.equal(text(r1.plaintext), 'first')
  await bob.persist()

  // restart: everything reloaded from the sealed file
  const bob2 = await DmSessions.open(homeB, 'bob', ib)
  t.same([bob2.decryptDm('alice', m1), bob2.decryptDm('alice', m2)].map(r => r.ok ? 'opened' : r.reason), ['replay', 'replay'], 'both refused after a restart')
  const reply = bob2.encryptDm('alice', encodeContent({ sentAt: 3, text: 'reply' }))
  await bob2.persist()
  const ra = alice.decryptDm('bob', reply)
  if (!ra.ok) throw new Error(ra.reason)
  ra.commit()
  t.equal(text(ra.plaintext), 'reply')
  // a second session started from the same (replayed) PQXDH header is refused: the prekeys are gone
  const again = await DmSessions.open(tmp('mm-sa2-'), 'alice', ia)
  again.startWith('bob', claim(ib, upload))
  t.same(bob2.decryptDm('alice', again.encryptDm('bob', encodeContent({ sentAt: 4, text: 'x' }))), { ok: false, reason: 'no-prekey' }, 'a one-time prekey is used once')

  // forward secrecy at rest: the attacker captured m1, m2 and reply, then steals both profiles (identity and state file)
  const stolenB = await DmSessions.open(homeB, 'bob', ib)
  for (const m of [m1, m2]) t.notOk(stolenB.decryptDm('alice', m).ok, 'Bob\'s stolen state opens no captured message')
  await alice.persist()
  const stolenA = await DmSessions.open(homeA, 'alice', ia)
  t.notOk(stolenA.decryptDm('bob', reply).ok, 'Alice\'s stolen state opens no captured message')

  const file = await readFile(join(homeB, 'profiles', 'bob', DM_STATE_FILE), 'utf8')
  t.notMatch(file, /first|second|reply/, 'the state file is sealed')
  const other = await DmSessions.open(homeB, 'bob', generateIdentity())
  t.ok(other.startedOver, 'under other keys the file does not open (the state starts over)')
})
