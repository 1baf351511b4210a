// Single executable (Node SEA) support: detects the SEA, and loads the
// better-sqlite3 native addon embedded as an asset (scripts/build-binary.mjs).
// The addon is written once to a private cache dir keyed by its hash and dlopen'ed;
// storage picks it up through one global hook, so src/storage never imports a role.
// Outside a SEA every function here is a no-op.
import { createRequire } from 'node:module'
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, chmodSync, unlinkSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256Hex } from '../../onion/crypto/fingerprints.js'

/** asset key of the addon in the SEA config */
export const SQLITE_ASSET = 'better_sqlite3.node'

interface SeaApi { isSea: () => boolean, getRawAsset: (key: string) => ArrayBuffer }

let seaApi: SeaApi | null | undefined
function sea (): SeaApi | null {
  if (seaApi === undefined) {
    try {
      // node:sea is always there on the project's Node 24; isSea() is false outside a SEA
      seaApi = createRequire(import.meta.url)('node:sea') as SeaApi
    } catch {
      seaApi = null
    }
  }
  return seaApi
}

/** true when running as the single executable */
export function isSea (): boolean {
  return sea()?.isSea() === true
}

/**
 * The command line that starts this same program again: the binary itself in a SEA,
 * else node (with its loader flags, e.g. tsx) and the CLI entry script.
 */
export function selfCommand (): { file: string, args: string[] } {
  if (isSea()) return { file: process.execPath, args: [] }
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'))
  return { file: process.execPath, args: [...execArgv, process.argv[1]] }
}

function cacheRoot (): string {
  const xdg = process.env.XDG_CACHE_HOME
  const home = homedir()
  if (xdg && xdg.startsWith('/')) return join(xdg, 'marshmello')
  if (home && home !== '/' && !home.startsWith('/nonexistent')) return join(home, '.cache', 'marshmello')
  // no usable home (e.g. a container user): a per-user dir in the temp dir, checked below
  return join(tmpdir(), `marshmello-${process.getuid?.() ?? 'user'}`)
}

/** creates dir with mode 0700, or checks an existing one is ours, private and not a symlink */
function privateDir (dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const st = lstatSync(dir)
  const uid = process.getuid?.()
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) throw new Error(`${dir} is not a directory owned by this user`)
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700)
}

let loaded: object | undefined
let tried = false

/**
 * The better-sqlite3 addon's exports when running as the SEA (loaded once), else
 * undefined. Throws with a clear message when the cache dir cannot be written.
 */
export function seaNativeBinding (): object | undefined {
  if (tried) return loaded
  tried = true
  if (!isSea()) return undefined
  const bytes = Buffer.from(sea()!.getRawAsset(SQLITE_ASSET))
  const hash = sha256Hex(bytes)
  const root = cacheRoot()
  const dir = join(root, hash)
  const file = join(dir, SQLITE_ASSET)
  try {
    privateDir(root)
    privateDir(dir)
    let ok = false
    try {
      ok = sha256Hex(readFileSync(file)) === hash
    } catch { /* not written yet */ }
    if (!ok) {
      // write + fsync + rename, so a concurrent start never dlopens half a file
      const tmp = `${file}.${process.pid}.tmp`
      const fd = openSync(tmp, 'w', 0o500)
      try {
        writeSync(fd, bytes)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      try {
        renameSync(tmp, file)
      } catch (err) {
        try { unlinkSync(tmp) } catch { /* gone */ }
        throw err
      }
    }
  } catch (err) {
    throw new Error(`cannot unpack the embedded SQLite addon into ${dir}: ${(err as Error).message} (set XDG_CACHE_HOME to a writable directory)`, { cause: err })
  }
  const mod = { exports: {} as object }
  process.dlopen(mod, file)
  loaded = mod.exports
  return loaded
}

/** the hook src/storage/users/sqlite.ts reads; set by the SEA entry (scripts/sea-entry.ts) */
export function installSqliteBindingHook (): void {
  (globalThis as { __marshmelloSqliteBinding?: () => object | undefined }).__marshmelloSqliteBinding = seaNativeBinding
}
