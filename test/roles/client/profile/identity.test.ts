// Profiles at rest: create then unlock, wrong password, file modes (0600 files, 0700
// dirs), no private key or password in clear on disk, refusing to overwrite, edited
// files, and usernames that would escape the home dir.

import t from 'tap'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, keyFingerprint, publicKeys } from '../../../../src/roles/client/e2e/keys.js'
import { createProfile, profileExists, readProfile, unlockProfile } from '../../../../src/roles/client/profile/identity.js'
import { resolveHome } from '../../../../src/roles/client/profile/files.js'

async function tempHome (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-profile-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'home')
}

const mode = async (p: string) => (await stat(p)).mode & 0o777

t.test('create, unlock, modes', async t => {
  const home = await tempHome(t)
  const id = generateIdentity()
  t.equal(await profileExists(home, 'alice'), false)
  const file = await createProfile(home, 'alice', 'correct horse', id)
  t.equal(await profileExists(home, 'alice'), true)
  t.same(file.publicKeys, publicKeys(id))
  t.same(file.kdf.N, 32768)
  t.same([file.kdf.r, file.kdf.p], [8, 1])

  const unlocked = await unlockProfile(home, 'alice', 'correct horse')
  t.same(unlocked, id, 'the same identity comes back')

  const dir = join(home, 'profiles', 'alice')
  t.equal(await mode(home), 0o700, 'home 0700')
  t.equal(await mode(join(home, 'profiles')), 0o700, 'profiles 0700')
  t.equal(await mode(dir), 0o700, 'profile dir 0700')
  t.equal(await mode(join(dir, 'identity.json')), 0o600, 'identity.json 0600')
  t.same(await readdir(dir), ['identity.json'], 'no temp file left behind')

  const text = await readFile(join(dir, 'identity.json'), 'utf8')
  for (const secret of [id.enc.privateKey, id.sign.privateKey]) {
    t.notOk(text.includes(secret.toString('base64')) || text.includes(secret.toString('hex')), 'no private key in clear')
  }
  t.notOk(text.includes('correct horse'), 'no password on disk')
  t.ok(text.includes(publicKeys(id).enc), 'public keys in clear')
  t.same((await readProfile(home, 'alice'))?.fingerprint, file.fingerprint, 'public part readable without the password')
})

t.test('wrong password, unknown user, no overwrite', async t => {
  const home = await tempHome(t)
  const id = generateIdentity()
  await createProfile(home, 'bob', 'pw-1', id)
  await t.rejects(unlockProfile(home, 'bob', 'pw-2'), { code: 'MM_ERR_BAD_PASSWORD', kind: 'auth' })
  await t.rejects(unlockProfile(home, 'bob', ''), { code: 'MM_ERR_BAD_INPUT' })
  await t.rejects(unlockProfile(home, 'carol', 'pw-1'), { code: 'MM_ERR_PROFILE_UNKNOWN' })
  await t.rejects(createProfile(home, 'bob', 'pw-3', generateIdentity()), { code: 'MM_ERR_PROFILE_EXISTS' })
  t.same(await unlockProfile(home, 'bob', 'pw-1'), id, 'the first profile is intact')
  const a = generateIdentity()
  await t.rejects(createProfile(home, 'gina', 'pw', { ...a, enc: { ...a.enc, publicKey: id.enc.publicKey } }), { code: 'MM_ERR_BAD_KEY' },
    'an inconsistent identity is not saved')
  const results = await Promise.allSettled([1, 2, 3].map(async () => await createProfile(home, 'dave', 'pw', generateIdentity())))
  t.equal(results.filter(r => r.status === 'fulfilled').length, 1, 'concurrent creates: exactly one wins')
})

t.test('edited files are refused', async t => {
  const home = await tempHome(t)
  const id = generateIdentity()
  await createProfile(home, 'erin', 'pw', id)
  const path = join(home, 'profiles', 'erin', 'identity.json')
  const original = JSON.parse(await readFile(path, 'utf8'))

  const other = publicKeys(generateIdentity())
  await writeFile(path, JSON.stringify({ ...original, publicKeys: other }))
  await t.rejects(unlockProfile(home, 'erin', 'pw'), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'swapped public keys, old fingerprint')
  await writeFile(path, JSON.stringify({ ...original, publicKeys: other, fingerprint: keyFingerprint(other) }))
  await t.rejects(unlockProfile(home, 'erin', 'pw'), { code: 'MM_ERR_BAD_PASSWORD' }, 'swapped public keys and fingerprint: AAD fails')

  await writeFile(path, JSON.stringify({ ...original, kdf: { ...original.kdf, N: 2 ** 30 } }))
  await t.rejects(unlockProfile(home, 'erin', 'pw'), { code: 'MM_ERR_PROFILE_CORRUPT' }, 'absurd scrypt cost')

  await writeFile(path, JSON.stringify({ ...original, kdf: { ...original.kdf, N: 2 ** 14 } }))
  await t.rejects(unlockProfile(home, 'erin', 'pw'), { code: 'MM_ERR_BAD_PASSWORD' }, 'parameters are authenticated')

  const sealed = Buffer.from(original.sealed, 'base64')
  sealed[3] ^= 1
  await writeFile(path, JSON.stringify({ ...original, sealed: sealed.toString('base64') }))
  await t.rejects(unlockProfile(home, 'erin', 'pw'), { code: 'MM_ERR_BAD_PASSWORD' }, 'flipped ciphertext bit')

  await writeFile(path, '{ not json')
  await t.rejects(unlockProfile(home, 'erin', 'pw'), { code: 'MM_ERR_PROFILE_CORRUPT' })

  await writeFile(path, JSON.stringify(original))
  t.same(await unlockProfile(home, 'erin', 'pw'), id, 'restored file unlocks again')
})

t.test('usernames cannot escape the home', async t => {
  const home = await tempHome(t)
  for (const bad of ['../x', 'a/b', '', 'Alice', '.', 'x'.repeat(65)]) {
    await t.rejects(createProfile(home, bad, 'pw', generateIdentity()), { code: 'MM_ERR_BAD_USERNAME' }, JSON.stringify(bad))
  }
  t.equal(resolveHome(home), home)
  t.match(resolveHome(), /\.marshmello$/, 'default ~/.marshmello')
})
