// `marshmello profile export` / `import`: a profile moved between computers as one file,
// so a second computer logs in with the same keys instead of replacing them (issue 17).
// The file holds the profile's identity.json (its private keys already sealed with the
// password), contacts.json (the pinned keys) and chat.json, all sealed together with
// AES-256-GCM under scrypt(password) (N=2^15, r=8, p=1, fresh salt and nonce), the
// header bound as AAD; a wrong password or an altered file does not open. Leaves out
// settings.json (the network, per computer) and the guard.

import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { MarshmelloError } from '../../../errors.js'
import { isUsername } from '../../../names.js'
import { scryptKey } from '../../../onion/crypto/kdf.js'
import { aesGcmOpen, aesGcmSeal, randomBytes } from '../../../onion/crypto/primitives.js'
import { CHAT_STATE_FILE, loadChatState } from './chat-state.js'
import { CONTACTS_FILE, loadContacts } from './contacts.js'
import { corrupt, ensureProfileDir, isObject, profileDir, readJson, writeFileAtomic } from './files.js'
import { DEFAULT_SCRYPT, IDENTITY_FILE, parseIdentityFile, profileExists, unlockProfile } from './identity.js'

export const EXPORT_FORMAT = 'marshmello-profile-export'
/** an export holds three small JSON files; anything larger is not one */
const MAX_EXPORT_BYTES = 4 * 1024 * 1024

interface ExportHeader {
  format: typeof EXPORT_FORMAT
  version: 1
  username: string
  kdf: { name: 'scrypt', N: number, r: number, p: number, salt: string }
  cipher: { name: 'aes-256-gcm', nonce: string }
}
interface ExportFile extends ExportHeader { sealed: string }
interface Contents { identity: unknown, contacts: unknown, chat: unknown }

const aad = (h: ExportHeader) => Buffer.from(JSON.stringify([h.format, h.version, h.username, h.kdf.name, h.kdf.N, h.kdf.r, h.kdf.p, h.kdf.salt, h.cipher.name, h.cipher.nonce]), 'utf8')

/** The export of `username`'s profile, sealed with its password (MM_ERR_BAD_PASSWORD when it does not open the profile). */
export async function exportProfile (home: string | undefined, username: string, password: string): Promise<string> {
  await unlockProfile(home, username, password) // the export opens with the password that opens the profile
  const dir = profileDir(home, username)
  const contents: Contents = {
    identity: await readJson(join(dir, IDENTITY_FILE)),
    contacts: (await readJson(join(dir, CONTACTS_FILE))) ?? null,
    chat: (await readJson(join(dir, CHAT_STATE_FILE))) ?? null,
  }
  const header: ExportHeader = {
    format: EXPORT_FORMAT,
    version: 1,
    username,
    kdf: { name: 'scrypt', ...DEFAULT_SCRYPT, salt: randomBytes(16).toString('base64') },
    cipher: { name: 'aes-256-gcm', nonce: randomBytes(12).toString('base64') },
  }
  const key = await scryptKey(password, Buffer.from(header.kdf.salt, 'base64'), 32, header.kdf)
  const plain = Buffer.from(JSON.stringify(contents), 'utf8')
  const sealed = aesGcmSeal(key, Buffer.from(header.cipher.nonce, 'base64'), plain, aad(header))
  key.fill(0)
  plain.fill(0)
  const file: ExportFile = { ...header, sealed: sealed.toString('base64') }
  return JSON.stringify(file, null, 2) + '\n'
}

/** The user an export belongs to, readable without the password (MM_ERR_PROFILE_CORRUPT when it is no export). */
export function exportUsername (text: string): string {
  return parseExport(text).username
}

/**
 * Writes the exported profile into `home`. Throws MM_ERR_BAD_PASSWORD (wrong password or
 * an altered file), MM_ERR_PROFILE_EXISTS (this home has a profile for that user already),
 * MM_ERR_PROFILE_CORRUPT (not an export). Returns the username.
 */
export async function importProfile (home: string | undefined, text: string, password: string): Promise<string> {
  const file = parseExport(text)
  const { username } = file
  if (await profileExists(home, username)) {
    throw new MarshmelloError('MM_ERR_PROFILE_EXISTS', `a profile for ${username} already exists in this home; import into another --home, or remove it first`)
  }
  const key = await scryptKey(password, Buffer.from(file.kdf.salt, 'base64'), 32, file.kdf)
  const plain = aesGcmOpen(key, Buffer.from(file.cipher.nonce, 'base64'), Buffer.from(file.sealed, 'base64'), aad(file))
  key.fill(0)
  if (plain === null) throw new MarshmelloError('MM_ERR_BAD_PASSWORD', 'wrong password for this export (or the file was altered)')
  let contents: Contents
  try {
    contents = JSON.parse(plain.toString('utf8'))
  } catch {
    throw corrupt('the export', 'sealed contents are not JSON')
  } finally {
    plain.fill(0)
  }
  if (!isObject(contents)) throw corrupt('the export', 'sealed contents are not an object')
  const dir = profileDir(home, username)
  parseIdentityFile(`the export's ${IDENTITY_FILE}`, contents.identity, username)
  await ensureProfileDir(home, username)
  // contacts and chat first, each checked by reading it back; identity.json last, as it makes the profile exist
  for (const [name, value] of [[CONTACTS_FILE, contents.contacts], [CHAT_STATE_FILE, contents.chat]] as const) {
    if (value === null || value === undefined) continue
    await writeFileAtomic(join(dir, name), JSON.stringify(value, null, 2) + '\n')
  }
  try {
    await loadContacts(home, username)
    await loadChatState(home, username)
  } catch (err) {
    await fs.rm(join(dir, CONTACTS_FILE), { force: true })
    await fs.rm(join(dir, CHAT_STATE_FILE), { force: true })
    throw err
  }
  try {
    await writeFileAtomic(join(dir, IDENTITY_FILE), JSON.stringify(contents.identity, null, 2) + '\n', true)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new MarshmelloError('MM_ERR_PROFILE_EXISTS', `a profile for ${username} already exists in this home`)
    throw err
  }
  await unlockProfile(home, username, password).catch(async (err) => {
    // the export opened but its keys do not (the password changed since): leave no half profile
    await fs.rm(join(dir, IDENTITY_FILE), { force: true })
    throw err
  })
  return username
}

function parseExport (text: string): ExportFile {
  const what = 'the export'
  if (text.length > MAX_EXPORT_BYTES) throw corrupt(what, 'too large to be a profile export')
  let raw: unknown
  try { raw = JSON.parse(text) } catch { throw corrupt(what, 'not valid JSON') }
  const b64 = (v: unknown, bytes?: number) => typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v) && (bytes === undefined || Buffer.from(v, 'base64').length === bytes)
  if (!isObject(raw) || raw.format !== EXPORT_FORMAT || raw.version !== 1) throw corrupt(what, 'not a Marshmello profile export (version 1)')
  if (!isUsername(raw.username)) throw corrupt(what, 'bad username')
  const { kdf, cipher } = raw
  if (!isObject(kdf) || kdf.name !== 'scrypt' || !b64(kdf.salt, 16) ||
      kdf.N !== DEFAULT_SCRYPT.N || kdf.r !== DEFAULT_SCRYPT.r || kdf.p !== DEFAULT_SCRYPT.p) throw corrupt(what, 'bad scrypt parameters')
  if (!isObject(cipher) || cipher.name !== 'aes-256-gcm' || !b64(cipher.nonce, 12)) throw corrupt(what, 'bad cipher parameters')
  if (!b64(raw.sealed)) throw corrupt(what, 'bad sealed contents')
  return raw as unknown as ExportFile
}
