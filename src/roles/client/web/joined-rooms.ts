// The rooms a user joined in the web UI, kept across sessions in the profile
// (home/profiles/<user>/rooms.json, 0600, `{"rooms":[…]}`), at most MAX_ROOMS valid
// room names; a missing or damaged file is an empty list (the lobby is always
// joined). A local stand-in for the terminal branch's joined-rooms file in
// src/roles/client/profile/: when both are merged the two clients share that one.
import { join } from 'node:path'
import { isRoomName } from '../../../names.js'
import { ensureProfileDir, isObject, profileDir, readJson, serialized, writeFileAtomic } from '../profile/files.js'

export const ROOMS_FILE = 'rooms.json'
export const MAX_ROOMS = 100

export async function loadJoinedRooms (home: string | undefined, user: string): Promise<string[]> {
  let raw: unknown
  try { raw = await readJson(join(profileDir(home, user), ROOMS_FILE)) } catch { return [] }
  if (!isObject(raw) || !Array.isArray(raw.rooms)) return []
  return [...new Set(raw.rooms.filter(isRoomName))].slice(0, MAX_ROOMS)
}

export async function saveJoinedRooms (home: string | undefined, user: string, rooms: string[]): Promise<void> {
  const dir = await ensureProfileDir(home, user)
  const file = join(dir, ROOMS_FILE)
  const clean = [...new Set(rooms.filter(isRoomName))].slice(0, MAX_ROOMS)
  await serialized(file, () => writeFileAtomic(file, JSON.stringify({ rooms: clean }) + '\n'))
}
