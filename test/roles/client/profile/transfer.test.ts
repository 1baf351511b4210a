// Moving a profile between computers (src/roles/client/profile/transfer.ts): export on
// one home, import into another, and the same keys, contacts and rooms come back; the
// export opens only with the password (a wrong one is refused and writes nothing), an
// altered export is refused, an existing profile is never overwritten, and nothing in
// the export is readable without the password.
import t from 'tap'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, publicKeys } from '../../../../src/roles/client/e2e/keys.js'
import { createProfile, profileExists, unlockProfile } from '../../../../src/roles/client/profile/identity.js'
import { checkContact, loadContacts } from '../../../../src/roles/client/profile/contacts.js'
import { loadChatState, updateChatState } from '../../../../src/roles/client/profile/chat-state.js'
import { exportProfile, exportUsername, importProfile } from '../../../../src/roles/client/profile/transfer.js'

async function tempDir (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-transfer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const PW = 'bob-password-22'

async function bobsProfile (home: string) {
  const id = generateIdentity()
  await createProfile(home, 'bob', PW, id)
  const carol = publicKeys(generateIdentity())
  await checkContact(home, 'bob', 'carol', carol)
  await updateChatState(home, 'bob', (s) => { s.rooms = ['lobby', 'secret-plans']; s.current = { room: 'secret-plans' }; s.seenDms = 'm-42' })
  return { id, carol }
}

t.test('export, import elsewhere: the same keys, contacts and rooms', async (t) => {
  const dir = await tempDir(t)
  const [one, two] = [join(dir, 'one'), join(dir, 'two')]
  const { id, carol } = await bobsProfile(one)
  const text = await exportProfile(one, 'bob', PW)
  t.equal(exportUsername(text), 'bob', 'the user is named outside the seal')
  t.notOk(text.includes(publicKeys(id).enc) || text.includes(carol.enc) || text.includes('secret-plans'), 'keys, contacts and rooms are sealed')
  t.equal(await importProfile(two, text, PW), 'bob')
  t.same(await unlockProfile(two, 'bob', PW), id, 'the same identity opens with the same password')
  t.same((await loadContacts(two, 'bob')).carol.keys, carol, 'the pinned contact came along')
  const chat = await loadChatState(two, 'bob')
  t.same([chat.rooms, chat.current, chat.seenDms], [['lobby', 'secret-plans'], { room: 'secret-plans' }, 'm-42'], 'joined rooms came along')
})

t.test('a wrong password is refused and writes nothing', async (t) => {
  const dir = await tempDir(t)
  const [one, two] = [join(dir, 'one'), join(dir, 'two')]
  await bobsProfile(one)
  await t.rejects(exportProfile(one, 'bob', 'not-the-password'), { code: 'MM_ERR_BAD_PASSWORD' }, 'export needs the profile password')
  const text = await exportProfile(one, 'bob', PW)
  await t.rejects(importProfile(two, text, 'not-the-password'), { code: 'MM_ERR_BAD_PASSWORD' })
  t.notOk(await profileExists(two, 'bob'), 'no profile')
  await t.rejects(readdir(join(two, 'profiles', 'bob')), { code: 'ENOENT' }, 'not even its directory')
})

t.test('an altered export is refused', async (t) => {
  const dir = await tempDir(t)
  const one = join(dir, 'one')
  await bobsProfile(one)
  const file = JSON.parse(await exportProfile(one, 'bob', PW))
  const flipped = Buffer.from(file.sealed, 'base64')
  flipped[10] ^= 1
  await t.rejects(importProfile(join(dir, 'a'), JSON.stringify({ ...file, sealed: flipped.toString('base64') }), PW), { code: 'MM_ERR_BAD_PASSWORD' }, 'a flipped bit')
  await t.rejects(importProfile(join(dir, 'b'), JSON.stringify({ ...file, username: 'mallory' }), PW), { code: 'MM_ERR_BAD_PASSWORD' }, 'another name in the header (bound as AAD)')
  await t.rejects(importProfile(join(dir, 'c'), JSON.stringify({ ...file, kdf: { ...file.kdf, N: 2 ** 30 } }), PW), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'scrypt parameters that would hang')
  await t.rejects(importProfile(join(dir, 'd'), 'not json', PW), { code: 'MM_ERR_PROFILE_CORRUPT' })
  await t.rejects(importProfile(join(dir, 'e'), JSON.stringify({ format: 'something else' }), PW), { code: 'MM_ERR_PROFILE_CORRUPT' })
})

t.test('an existing profile is never overwritten', async (t) => {
  const dir = await tempDir(t)
  const [one, two] = [join(dir, 'one'), join(dir, 'two')]
  await bobsProfile(one)
  const other = generateIdentity()
  await createProfile(two, 'bob', 'other-password-1', other)
  const before = await readFile(join(two, 'profiles', 'bob', 'identity.json'), 'utf8')
  await t.rejects(importProfile(two, await exportProfile(one, 'bob', PW), PW), { code: 'MM_ERR_PROFILE_EXISTS' })
  t.equal(await readFile(join(two, 'profiles', 'bob', 'identity.json'), 'utf8'), before, 'unchanged')
})
