// Where the client keeps its files (docs/ARCHITECTURE.md §10): `home` (default ~/.marshmello) holds
// settings.json and profiles/<username>/. Private dirs (0700), private files (0600),
// atomic writes (temp file, fsync, rename) and JSON reads with clear errors. Leaves out
// what goes in the files (identity.ts, settings.ts, contacts.ts) and cross-process locks.

import { constants, promises as fs } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { randomHex } from '../../../onion/crypto/random.js'
import { MarshmelloError } from '../../../errors.js'
import { USERNAME_RULE, isUsername } from '../../../names.js'

export const DIR_MODE = 0o700
export const FILE_MODE = 0o600

export function resolveHome (home?: string): string {
  return home !== undefined && home !== '' ? home : join(homedir(), '.marshmello')
}

/**
 * Thrown when a username is not one the server stores (lowercase, src/names.ts); such
 * a name is also a safe path segment, so it cannot escape the home dir.
 */
export function checkUsername (username: string): string {
  if (!isUsername(username)) {
    throw new MarshmelloError('MM_ERR_BAD_USERNAME', `${USERNAME_RULE}, in lowercase`)
  }
  return username
}

export function profileDir (home: string | undefined, username: string): string {
  return join(resolveHome(home), 'profiles', checkUsername(username))
}

/** Creates the dir (and missing parents) with mode 0700; dirs it owns are reset to 0700. */
export async function ensurePrivateDir (dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: DIR_MODE })
  await fs.chmod(dir, DIR_MODE)
}

/** Makes home/profiles/<username>/ (all 0700) and returns its path. */
export async function ensureProfileDir (home: string | undefined, username: string): Promise<string> {
  const root = resolveHome(home)
  const dir = profileDir(root, username)
  await ensurePrivateDir(root)
  await ensurePrivateDir(join(root, 'profiles'))
  await ensurePrivateDir(dir)
  return dir
}

/**
 * Writes `data` to `file` atomically with mode 0600: a reader sees the old or the new
 * content, never a mix. With `exclusive`, fails with EEXIST instead of replacing.
 */
export async function writeFileAtomic (file: string, data: string, exclusive = false): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomHex(6)}`
  const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, FILE_MODE)
  try {
    await fh.writeFile(data, 'utf8')
    await fh.chmod(FILE_MODE)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    if (exclusive) {
      await fs.link(tmp, file) // fails with EEXIST rather than replacing
      await fs.unlink(tmp)
    } else {
      await fs.rename(tmp, file)
    }
  } catch (err) {
    await fs.unlink(tmp).catch(() => {})
    throw err
  }
  await syncDir(dirname(file))
}

async function syncDir (dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, constants.O_RDONLY)
    try { await fh.sync() } finally { await fh.close() }
  } catch { /* not every platform can fsync a directory; the rename is still atomic */ }
}

/** Thrown when one of the client's files is not the JSON it should be. */
export const corrupt = (file: string, why: string) =>
  new MarshmelloError('MM_ERR_PROFILE_CORRUPT', `${file}: ${why}`)

/** Parsed JSON of `file`, or undefined when it does not exist. Throws MM_ERR_PROFILE_CORRUPT. */
export async function readJson (file: string): Promise<unknown> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text)
  } catch {
    throw corrupt(file, 'not valid JSON')
  }
}

export function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Runs read-modify-write steps on one file one at a time within this process. */
const queues = new Map<string, Promise<unknown>>()
export async function serialized<T> (file: string, step: () => Promise<T>): Promise<T> {
  const prev = queues.get(file) ?? Promise.resolve()
  const run = prev.then(step, step)
  const tail = run.catch(() => {})
  queues.set(file, tail)
  try {
    return await run
  } finally {
    if (queues.get(file) === tail) queues.delete(file)
  }
}
