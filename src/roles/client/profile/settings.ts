// Network settings remembered after first use, in home/settings.json (0600): the relay to
// bootstrap from, the pinned directory key, a devnet dir and the entry guard's state (its
// shape is circuits/guard-state.ts's, its meaning circuits/guards.ts's). Unknown fields are
// dropped on load; a file that is not valid settings is an error, never silently reset
// (that would drop the pinned directory key).

import { join } from 'node:path'
import { corrupt, ensurePrivateDir, isObject, readJson, resolveHome, serialized, writeFileAtomic } from './files.js'
import { MarshmelloError } from '../../../errors.js'
import { parseGuardState, type GuardState } from '../circuits/guard-state.js'

export const SETTINGS_FILE = 'settings.json'

export interface Settings {
  relay?: string
  /** pinned authority key fingerprints, comma-separated */
  directoryKey?: string
  /** how many of them must sign (absent: a majority) */
  directoryThreshold?: number
  devnetDir?: string
  guard?: GuardState
}

const MAX_STRING = 4096

export async function loadSettings (home?: string): Promise<Settings> {
  const path = join(resolveHome(home), SETTINGS_FILE)
  const raw = await readJson(path)
  if (raw === undefined) return {}
  try {
    return validateSettings(raw)
  } catch (err) {
    throw corrupt(path, (err as Error).message)
  }
}

/** Replaces settings.json with `settings` (validated; MM_ERR_BAD_INPUT when not). */
export async function saveSettings (home: string | undefined, settings: Settings): Promise<void> {
  const root = resolveHome(home)
  let clean: Settings
  try {
    clean = validateSettings(settings)
  } catch (err) {
    throw new MarshmelloError('MM_ERR_BAD_INPUT', (err as Error).message)
  }
  await ensurePrivateDir(root)
  const path = join(root, SETTINGS_FILE)
  await serialized(path, async () => await writeFileAtomic(path, JSON.stringify(clean, null, 2) + '\n'))
}

/** Load, change, save as one step (within this process); returns the saved settings. */
export async function updateSettings (home: string | undefined, change: (s: Settings) => Settings): Promise<Settings> {
  const root = resolveHome(home)
  const path = join(root, SETTINGS_FILE)
  return await serialized(path, async () => {
    let next: Settings
    try {
      next = validateSettings(change(await loadSettings(root)))
    } catch (err) {
      if (err instanceof MarshmelloError) throw err
      throw new MarshmelloError('MM_ERR_BAD_INPUT', (err as Error).message)
    }
    await ensurePrivateDir(root)
    await writeFileAtomic(path, JSON.stringify(next, null, 2) + '\n')
    return next
  })
}

function validateSettings (raw: unknown): Settings {
  if (!isObject(raw)) throw new Error('settings must be a JSON object')
  const out: Settings = {}
  for (const k of ['relay', 'directoryKey', 'devnetDir'] as const) {
    const v = raw[k]
    if (v === undefined) continue
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_STRING) throw new Error(`${k} must be a non-empty string`)
    out[k] = v
  }
  if (raw.directoryThreshold !== undefined) {
    if (!Number.isSafeInteger(raw.directoryThreshold) || (raw.directoryThreshold as number) < 1 || (raw.directoryThreshold as number) > 16) throw new Error('directoryThreshold must be an integer from 1 to 16')
    out.directoryThreshold = raw.directoryThreshold as number
  }
  if (raw.guard !== undefined) out.guard = parseGuardState(raw.guard)
  return out
}
