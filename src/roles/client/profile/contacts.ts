// Contacts pinned on first use (TOFU), per user in home/profiles/<me>/contacts.json: the
// first keys seen for a username are pinned; later keys are 'same' or 'changed', and a
// changed key stays unpinned until acceptContactKey re-pins it explicitly. Leaves out how
// the change is shown to the user (the chat warns, loudly) and cross-process locking.

import { join } from 'node:path'
import { MarshmelloError } from '../../../errors.js'
import type { UserKeys } from '../../../storage/types.js'
import { keyFingerprint, normalizeUserKeys } from '../e2e/keys.js'
import { checkUsername, corrupt, ensureProfileDir, isObject, profileDir, readJson, serialized, writeFileAtomic } from './files.js'

export const CONTACTS_FILE = 'contacts.json'

export interface Contact {
  /** hex SHA-256 of raw enc ‖ raw sign (keys.ts keyFingerprint) */
  fingerprint: string
  /** ms since epoch when these keys were pinned */
  firstSeen: number
  keys: UserKeys
  /** the user compared the safety number with this contact (reset when the key changes) */
  verified?: boolean
  /** other keys seen for this contact since, not trusted yet: sending stays refused until /trust */
  pending?: UserKeys
}

export type ContactCheck =
  | { status: 'new' | 'same', newFingerprint: string }
  | { status: 'changed', oldFingerprint: string, newFingerprint: string }

interface ContactsFile { version: 1, contacts: Record<string, Contact> }

export interface ContactOptions {
  now?: () => number
}

/** Every pinned contact of `me` (empty when none). */
export async function loadContacts (home: string | undefined, me: string): Promise<Record<string, Contact>> {
  return (await readContacts(home, me)).contacts
}

/**
 * Compares `keys` (from the server) with the pin for `username`: pins them when there is
 * none ('new'), else 'same' or 'changed'. A changed key is never re-pinned here.
 */
export async function checkContact (
  home: string | undefined, me: string, username: string, keys: UserKeys, opts: ContactOptions = {}
): Promise<ContactCheck> {
  checkUsername(username)
  const clean = normalizeUserKeys(keys)
  const newFingerprint = keyFingerprint(clean)
  return await mutate<ContactCheck>(home, me, file => {
    const pinned = Object.hasOwn(file.contacts, username) ? file.contacts[username] : undefined
    if (pinned === undefined) {
      file.contacts[username] = { fingerprint: newFingerprint, firstSeen: (opts.now ?? Date.now)(), keys: clean }
      return { result: { status: 'new', newFingerprint }, write: true }
    }
    if (pinned.fingerprint === newFingerprint) return { result: { status: 'same', newFingerprint }, write: false }
    // remembered, so a later send (in any process) is refused until the user re-trusts
    const seen = pinned.pending !== undefined && keyFingerprint(pinned.pending) === newFingerprint
    if (!seen) pinned.pending = clean
    return { result: { status: 'changed', oldFingerprint: pinned.fingerprint, newFingerprint }, write: !seen }
  })
}

/** Pins `keys` for `username`, replacing any earlier pin (after the user accepted the change). */
export async function acceptContactKey (
  home: string | undefined, me: string, username: string, keys: UserKeys, opts: ContactOptions = {}
): Promise<Contact> {
  checkUsername(username)
  const clean = normalizeUserKeys(keys)
  const contact: Contact = { fingerprint: keyFingerprint(clean), firstSeen: (opts.now ?? Date.now)(), keys: clean }
  return await mutate(home, me, file => {
    file.contacts[username] = contact
    return { result: contact, write: true }
  })
}

/**
 * Marks the pinned key of `username` as verified (the safety numbers matched). Throws
 * MM_ERR_KEY_CHANGED when `fingerprint` is no longer the pinned one, MM_ERR_NO_KEYS when none is pinned.
 */
export async function markVerified (home: string | undefined, me: string, username: string, fingerprint: string): Promise<Contact> {
  checkUsername(username)
  return await mutate(home, me, file => {
    const pinned = Object.hasOwn(file.contacts, username) ? file.contacts[username] : undefined
    if (pinned === undefined) throw new MarshmelloError('MM_ERR_NO_KEYS', `no key pinned for ${username} yet: look them up first (/whois ${username})`)
    if (pinned.fingerprint !== fingerprint) throw new MarshmelloError('MM_ERR_KEY_CHANGED', `${username}'s key changed since it was shown: check the safety number again`)
    pinned.verified = true
    return { result: pinned, write: true }
  })
}

async function mutate<T> (
  home: string | undefined, me: string, step: (file: ContactsFile) => { result: T, write: boolean }
): Promise<T> {
  const path = join(profileDir(home, me), CONTACTS_FILE)
  return await serialized(path, async () => {
    const file = await readContacts(home, me)
    const { result, write } = step(file)
    if (write) {
      await ensureProfileDir(home, me)
      await writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n')
    }
    return result
  })
}

async function readContacts (home: string | undefined, me: string): Promise<ContactsFile> {
  const path = join(profileDir(home, me), CONTACTS_FILE)
  const raw = await readJson(path)
  // a null-prototype map: "__proto__" is a valid username
  const contacts: Record<string, Contact> = Object.create(null)
  if (raw === undefined) return { version: 1, contacts }
  if (!isObject(raw) || raw.version !== 1 || !isObject(raw.contacts)) throw corrupt(path, 'not a contacts file')
  for (const [name, c] of Object.entries(raw.contacts)) {
    try {
      checkUsername(name)
      if (!isObject(c) || !isObject(c.keys) || typeof c.firstSeen !== 'number') throw new Error('bad entry')
      const keys = normalizeUserKeys(c.keys as unknown as UserKeys)
      if (c.fingerprint !== keyFingerprint(keys)) throw new Error('fingerprint does not match keys')
      const pending = c.pending === undefined ? undefined : normalizeUserKeys(c.pending as unknown as UserKeys)
      contacts[name] = { fingerprint: c.fingerprint, firstSeen: c.firstSeen, keys, ...(c.verified === true ? { verified: true } : {}), ...(pending ? { pending } : {}) }
    } catch {
      throw corrupt(path, `bad entry for contact ${JSON.stringify(name.slice(0, 64))}`)
    }
  }
  return { version: 1, contacts }
}
