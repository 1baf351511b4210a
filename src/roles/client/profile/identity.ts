// A user's identity at rest: home/profiles/<username>/identity.json holds the public keys
// in clear and both private keys sealed with AES-256-GCM under scrypt(password) (N=2^15,
// r=8, p=1, random salt; the parameters stored beside). The public part is bound as AAD and
// rechecked after unlocking. Leaves out password prompts and changing the password.

import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { MarshmelloError } from '../../../errors.js'
import { scryptKey } from '../../../onion/crypto/kdf.js'
import { aesGcmOpen, aesGcmSeal, randomBytes } from '../../../onion/crypto/primitives.js'
import type { UserKeys } from '../../../storage/types.js'
import { identityFromPrivate, keyFingerprint, publicKeys, type Identity } from '../e2e/keys.js'
import { checkUsername, corrupt, ensureProfileDir, isObject, profileDir, readJson, writeFileAtomic } from './files.js'

export const IDENTITY_FILE = 'identity.json'
export const DEFAULT_SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const
/** Bounds on parameters read from disk, so an edited file cannot make unlocking hang. */
const MAX_LOG2_N = 20
const MAX_R = 32
const MAX_P = 16

export interface IdentityFile {
  version: 1
  username: string
  publicKeys: UserKeys
  fingerprint: string
  kdf: { name: 'scrypt', N: number, r: number, p: number, salt: string }
  cipher: { name: 'aes-256-gcm', nonce: string }
  /** base64 of AES-256-GCM(enc private ‖ sign private) ‖ tag */
  sealed: string
  createdAt: number
}

/** Thrown by createProfile when the user already has a profile in this home. */
const exists = (username: string) =>
  new MarshmelloError('MM_ERR_PROFILE_EXISTS', `a profile for ${username} already exists`)

export async function profileExists (home: string | undefined, username: string): Promise<boolean> {
  try {
    await fs.access(join(profileDir(home, username), IDENTITY_FILE))
    return true
  } catch {
    return false
  }
}

export async function createProfile (
  home: string | undefined, username: string, password: string, identity: Identity,
  opts: { now?: () => number } = {}
): Promise<IdentityFile> {
  checkUsername(username)
  checkPassword(password)
  const pub = publicKeys(identity)
  const fromPrivate = publicKeys(identityFromPrivate(identity.enc.privateKey, identity.sign.privateKey))
  if (fromPrivate.enc !== pub.enc || fromPrivate.sign !== pub.sign) {
    throw new MarshmelloError('MM_ERR_BAD_KEY', 'identity public keys do not match its private keys')
  }
  const kdf = { name: 'scrypt' as const, ...DEFAULT_SCRYPT, salt: randomBytes(16).toString('base64') }
  const nonce = randomBytes(12)
  const head = { version: 1 as const, username, publicKeys: pub, fingerprint: keyFingerprint(pub), kdf }
  const key = await deriveKey(password, kdf)
  const secret = Buffer.concat([identity.enc.privateKey, identity.sign.privateKey])
  const sealed = aesGcmSeal(key, nonce, secret, aad(head)) // ciphertext ‖ tag
  key.fill(0)
  secret.fill(0)
  const file: IdentityFile = {
    ...head,
    cipher: { name: 'aes-256-gcm', nonce: nonce.toString('base64') },
    sealed: sealed.toString('base64'),
    createdAt: (opts.now ?? Date.now)()
  }
  const dir = await ensureProfileDir(home, username)
  try {
    await writeFileAtomic(join(dir, IDENTITY_FILE), JSON.stringify(file, null, 2) + '\n', true)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists(username)
    throw err
  }
  return file
}

/** The public part of a profile, readable without the password; undefined when there is none. */
export async function readProfile (home: string | undefined, username: string): Promise<IdentityFile | undefined> {
  const path = join(profileDir(home, username), IDENTITY_FILE)
  const raw = await readJson(path)
  return raw === undefined ? undefined : parseIdentityFile(path, raw, username)
}

/**
 * Decrypts the private keys. Throws MM_ERR_PROFILE_UNKNOWN (no profile), MM_ERR_BAD_PASSWORD
 * (wrong password, or the file was altered), MM_ERR_PROFILE_CORRUPT (not a profile file).
 */
export async function unlockProfile (home: string | undefined, username: string, password: string): Promise<Identity> {
  checkPassword(password)
  const file = await readProfile(home, username)
  if (file === undefined) {
    throw new MarshmelloError('MM_ERR_PROFILE_UNKNOWN', `no profile for ${username} in this home`)
  }
  const { version, username: name, publicKeys: pub, fingerprint, kdf } = file
  const key = await deriveKey(password, kdf)
  const sealed = Buffer.from(file.sealed, 'base64')
  const secret = sealed.length === 64 + 16
    ? aesGcmOpen(key, Buffer.from(file.cipher.nonce, 'base64'), sealed, aad({ version, username: name, publicKeys: pub, fingerprint, kdf }))
    : null
  key.fill(0)
  if (secret === null) throw new MarshmelloError('MM_ERR_BAD_PASSWORD', 'wrong password for this profile')
  const identity = identityFromPrivate(secret.subarray(0, 32), secret.subarray(32, 64))
  secret.fill(0)
  const derived = publicKeys(identity)
  if (derived.enc !== pub.enc || derived.sign !== pub.sign) {
    throw corrupt(join(profileDir(home, username), IDENTITY_FILE), 'public keys do not match the private keys')
  }
  return identity
}

function aad (head: Pick<IdentityFile, 'version' | 'username' | 'publicKeys' | 'fingerprint' | 'kdf'>): Buffer {
  const { version, username, publicKeys: p, fingerprint, kdf } = head
  return Buffer.from(JSON.stringify(['marshmello/profile/v1', version, username, p.enc, p.sign, fingerprint, kdf.name, kdf.N, kdf.r, kdf.p, kdf.salt]), 'utf8')
}

/** Thrown when a password is empty or not a string. */
function checkPassword (password: string): void {
  if (typeof password !== 'string' || password.length === 0) {
    throw new MarshmelloError('MM_ERR_BAD_INPUT', 'password must be a non-empty string')
  }
}

async function deriveKey (password: string, kdf: IdentityFile['kdf']): Promise<Buffer> {
  return await scryptKey(password, Buffer.from(kdf.salt, 'base64'), 32, kdf)
}

/** Checks that `raw` is an identity file of `username` (MM_ERR_PROFILE_CORRUPT, naming `path`, when not). */
export function parseIdentityFile (path: string, raw: unknown, username: string): IdentityFile {
  const b64 = (v: unknown, bytes: number) => typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v) && Buffer.from(v, 'base64').length === bytes
  if (!isObject(raw) || raw.version !== 1) throw corrupt(path, 'unknown identity file version')
  if (raw.username !== username) throw corrupt(path, 'identity file belongs to another user')
  const { kdf, cipher, publicKeys: pub } = raw
  if (!isObject(pub) || !b64(pub.enc, 32) || !b64(pub.sign, 32)) throw corrupt(path, 'bad public keys')
  if (!isObject(kdf) || kdf.name !== 'scrypt' || !b64(kdf.salt, 16) ||
      !isPow2(kdf.N, MAX_LOG2_N) || !isInt(kdf.r, MAX_R) || !isInt(kdf.p, MAX_P)) throw corrupt(path, 'bad scrypt parameters')
  if (!isObject(cipher) || cipher.name !== 'aes-256-gcm' || !b64(cipher.nonce, 12)) throw corrupt(path, 'bad cipher parameters')
  if (!b64(raw.sealed, 64 + 16)) throw corrupt(path, 'bad sealed keys')
  let fingerprint: string
  try { fingerprint = keyFingerprint(pub as unknown as UserKeys) } catch { throw corrupt(path, 'bad public keys') }
  if (raw.fingerprint !== fingerprint) throw corrupt(path, 'fingerprint does not match the public keys')
  if (typeof raw.createdAt !== 'number') throw corrupt(path, 'bad creation date')
  return raw as unknown as IdentityFile
}

const isInt = (v: unknown, max: number): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max
const isPow2 = (v: unknown, maxLog2: number): v is number =>
  isInt(v, 2 ** maxLog2) && (v as number) >= 2 && ((v as number) & ((v as number) - 1)) === 0
