// Contacts pinned on first use: new, same, changed (not re-pinned), explicit accept,
// per-user files with mode 0600, concurrent checks, bad keys and corrupt files.

import t from 'tap'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, keyFingerprint, publicKeys } from '../../../../src/roles/client/e2e/keys.js'
import { acceptContactKey, checkContact, loadContacts } from '../../../../src/roles/client/profile/contacts.js'

async function tempHome (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-contacts-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}
const now = () => 1700000000000

t.test('new, same, changed, accepted', async t => {
  const home = await tempHome(t)
  const bob1 = publicKeys(generateIdentity())
  const bob2 = publicKeys(generateIdentity())
  const fp1 = keyFingerprint(bob1)
  const fp2 = keyFingerprint(bob2)

  t.same(await checkContact(home, 'alice', 'bob', bob1, { now }), { status: 'new', newFingerprint: fp1 }, 'first sight pins')
  t.same(await checkContact(home, 'alice', 'bob', bob1), { status: 'same', newFingerprint: fp1 })
  t.same(await checkContact(home, 'alice', 'bob', bob2), { status: 'changed', oldFingerprint: fp1, newFingerprint: fp2 })
  t.same(await checkContact(home, 'alice', 'bob', bob2), { status: 'changed', oldFingerprint: fp1, newFingerprint: fp2 },
    'still changed: a changed key is not silently re-pinned')
  t.same((await loadContacts(home, 'alice')).bob, { fingerprint: fp1, firstSeen: now(), keys: bob1, pending: bob2 }, 'the pin stays; the key seen is remembered as pending (sends stay refused)')

  const accepted = await acceptContactKey(home, 'alice', 'bob', bob2, { now: () => now() + 5 })
  t.same(accepted, { fingerprint: fp2, firstSeen: now() + 5, keys: bob2 })
  t.same(await checkContact(home, 'alice', 'bob', bob2), { status: 'same', newFingerprint: fp2 }, 'after accepting')
  t.same(await checkContact(home, 'alice', 'bob', bob1), { status: 'changed', oldFingerprint: fp2, newFingerprint: fp1 })

  t.same(await checkContact(home, 'carol', 'bob', bob2), { status: 'new', newFingerprint: fp2 }, 'each user has their own pins')
  const file = join(home, 'profiles', 'alice', 'contacts.json')
  t.equal((await stat(file)).mode & 0o777, 0o600)
  t.equal((await stat(join(home, 'profiles', 'alice'))).mode & 0o777, 0o700)
  t.same(Object.keys(JSON.parse(await readFile(file, 'utf8')).contacts), ['bob'])
})

t.test('raw keys and base64 keys pin the same', async t => {
  const home = await tempHome(t)
  const id = generateIdentity()
  await checkContact(home, 'alice', 'dan', publicKeys(id))
  const r = await checkContact(home, 'alice', 'dan', { enc: id.enc.publicKey, sign: id.sign.publicKey } as never)
  t.equal(r.status, 'same')
})

t.test('concurrent first sights keep every pin', async t => {
  const home = await tempHome(t)
  const names = Array.from({ length: 8 }, (_, i) => `user${i}`)
  await Promise.all(names.map(async n => await checkContact(home, 'alice', n, publicKeys(generateIdentity()))))
  t.same(Object.keys(await loadContacts(home, 'alice')).sort(), names)
})

t.test('bad input and corrupt files', async t => {
  const home = await tempHome(t)
  const good = publicKeys(generateIdentity())
  await t.rejects(checkContact(home, 'alice', 'bob', { enc: good.enc, sign: 'AAAA' }), { code: 'MM_ERR_BAD_KEY' })
  await t.rejects(checkContact(home, 'alice', '../bob', good), { code: 'MM_ERR_BAD_USERNAME' })
  await t.rejects(checkContact(home, '../alice', 'bob', good), { code: 'MM_ERR_BAD_USERNAME' })
  t.same(await loadContacts(home, 'alice'), {}, 'nothing pinned by the failures')

  t.same(await checkContact(home, 'alice', '__proto__', good), { status: 'new', newFingerprint: keyFingerprint(good) },
    '"__proto__" is just a name')
  t.same(await checkContact(home, 'alice', '__proto__', good), { status: 'same', newFingerprint: keyFingerprint(good) })

  const file = join(home, 'profiles', 'alice', 'contacts.json')
  const other = publicKeys(generateIdentity())
  await writeFile(file, JSON.stringify({ version: 1, contacts: { bob: { fingerprint: keyFingerprint(good), firstSeen: 1, keys: other } } }))
  await t.rejects(checkContact(home, 'alice', 'bob', other), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'fingerprint not matching keys')
  await writeFile(file, 'null')
  await t.rejects(loadContacts(home, 'alice'), { code: 'MM_ERR_PROFILE_CORRUPT' })
})
