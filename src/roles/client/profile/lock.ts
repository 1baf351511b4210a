// One process per signed-in profile: home/profiles/<username>/profile.lock names the process
// (pid and a random nonce) that holds the profile's DM state. Two processes on one profile
// would each keep a copy of the ratchet sessions and write it back over the other's, so a
// message key could be used twice (AES-GCM under one key and nonce) or a received DM lost.
// A second login, in another process or in this one, is refused with MM_ERR_PROFILE_BUSY
// while the holder lives; a lock whose process is gone (a crash) is taken over. Released at
// logout and when the process exits. Leaves out hosts sharing one home over a network
// file system (a pid means nothing there).

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { MarshmelloError } from '../../../errors.js'
import { randomHex } from '../../../onion/crypto/random.js'
import { profileDir } from './files.js'

export const LOCK_FILE = 'profile.lock'

export interface ProfileLock { release (): void }

/** lock path → nonce, for the locks this process holds */
const held = new Map<string, string>()
let exitHook = false

const busy = (me: string, by: string) => new MarshmelloError('MM_ERR_PROFILE_BUSY',
  `${me} is signed in ${by}; two at once would overwrite each other's DM keys: use that one, or close it first`)

/** whether a process with this pid exists (EPERM: it does, under another user) */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function holder (path: string): { pid: number, nonce: string } | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown, nonce?: unknown }
    return Number.isSafeInteger(v.pid) && typeof v.nonce === 'string' ? { pid: v.pid as number, nonce: v.nonce } : null
  } catch {
    return null // unreadable or half-written: treated as stale
  }
}

/** Takes the profile of `me` for this process, or throws MM_ERR_PROFILE_BUSY. */
export function acquireProfileLock (home: string | undefined, me: string): ProfileLock {
  const path = join(profileDir(home, me), LOCK_FILE)
  if (held.has(path)) throw busy(me, 'already in this program')
  const nonce = randomHex(16)
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      try { writeSync(fd, JSON.stringify({ pid: process.pid, nonce }) + '\n') } finally { closeSync(fd) }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err
      const h = holder(path)
      if (h !== null && h.pid !== process.pid && alive(h.pid)) throw busy(me, `in another marshmello process (pid ${h.pid})`)
      unlinkSync(path) // its process is gone: a crash left it
    }
  }
  held.set(path, nonce)
  if (!exitHook) {
    exitHook = true
    process.on('exit', () => { for (const p of [...held.keys()]) release(p) })
  }
  return { release: () => release(path, nonce) }
}

function release (path: string, nonce = held.get(path)): void {
  if (nonce === undefined || held.get(path) !== nonce) return
  held.delete(path)
  try {
    if (holder(path)?.nonce === nonce) unlinkSync(path)
  } catch { /* already gone */ }
}
