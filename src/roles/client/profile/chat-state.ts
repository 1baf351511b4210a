// What the clients remember between sessions, per user in home/profiles/<me>/chat.json
// (the one joined-rooms store of the terminal chat and the web UI alike; an older web
// UI's rooms.json is merged in once and removed): the joined rooms (at most MAX_JOINED, in join order),
// where the user was (a room, or a DM peer), and the last message seen in each room
// and in the DMs, so the next login shows what was missed and counts it as unread.
// A file that is not valid chat state is an error (never silently reset). Leaves out
// contacts (contacts.ts) and the keys (identity.ts).

import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { isRoomName, isUsername } from '../../../names.js'
import { corrupt, ensureProfileDir, isObject, profileDir, readJson, serialized, writeFileAtomic } from './files.js'

export const CHAT_STATE_FILE = 'chat.json'
/** the joined rooms of web UIs before the two clients shared chat.json: read once, then removed */
export const LEGACY_ROOMS_FILE = 'rooms.json'
export const MAX_JOINED = 32
const MESSAGE_ID = /^[A-Za-z0-9_.:-]{1,64}$/

export interface ChatState {
  /** joined rooms, lobby first when joined */
  rooms: string[]
  /** where the user was: a room name, or a DM peer */
  current?: { room: string } | { dm: string }
  /** last message id seen per room */
  seenRooms: Record<string, string>
  /** last DM id seen (DMs are one stream on the server) */
  seenDms?: string
}

export const emptyChatState = (): ChatState => ({ rooms: [], seenRooms: Object.create(null) })

export async function loadChatState (home: string | undefined, me: string): Promise<ChatState> {
  const path = join(profileDir(home, me), CHAT_STATE_FILE)
  const raw = await readJson(path)
  let state: ChatState
  try {
    state = raw === undefined ? emptyChatState() : parseChatState(raw)
  } catch (err) {
    throw corrupt(path, (err as Error).message)
  }
  for (const room of await legacyRooms(home, me)) joinRoom(state, room)
  return state
}

/** the rooms of an older web UI's rooms.json (`{"rooms":[…]}`); a damaged one is none */
async function legacyRooms (home: string | undefined, me: string): Promise<string[]> {
  let raw: unknown
  try { raw = await readJson(join(profileDir(home, me), LEGACY_ROOMS_FILE)) } catch { return [] }
  if (!isObject(raw) || !Array.isArray(raw.rooms)) return []
  return raw.rooms.filter(isRoomName)
}

/** load, change, save as one step (within this process) */
export async function updateChatState (home: string | undefined, me: string, change: (s: ChatState) => void): Promise<ChatState> {
  const path = join(profileDir(home, me), CHAT_STATE_FILE)
  return await serialized(path, async () => {
    const s = await loadChatState(home, me)
    change(s)
    const clean = parseChatState(JSON.parse(JSON.stringify({ version: 1, ...s })))
    await ensureProfileDir(home, me)
    await writeFileAtomic(path, JSON.stringify({ version: 1, ...clean }, null, 2) + '\n')
    await fs.rm(join(profileDir(home, me), LEGACY_ROOMS_FILE), { force: true }) // merged into chat.json now
    return clean
  })
}

/** adds a room to the joined list (false when MAX_JOINED rooms are joined already) */
export function joinRoom (s: ChatState, room: string): boolean {
  if (s.rooms.includes(room)) return true
  if (s.rooms.length >= MAX_JOINED) return false
  s.rooms.push(room)
  return true
}

export function leaveRoom (s: ChatState, room: string): void {
  s.rooms = s.rooms.filter((r) => r !== room)
  delete s.seenRooms[room]
  if (s.current && 'room' in s.current && s.current.room === room) delete s.current
}

function parseChatState (raw: unknown): ChatState {
  if (!isObject(raw) || raw.version !== 1) throw new Error('not a chat state file (version 1)')
  const out = emptyChatState()
  if (!Array.isArray(raw.rooms) || raw.rooms.length > MAX_JOINED || !raw.rooms.every(isRoomName)) throw new Error(`rooms must be at most ${MAX_JOINED} room names`)
  out.rooms = [...new Set(raw.rooms as string[])]
  const cur = raw.current
  if (cur !== undefined) {
    if (isObject(cur) && isRoomName(cur.room)) out.current = { room: cur.room }
    else if (isObject(cur) && isUsername(cur.dm)) out.current = { dm: cur.dm }
    else throw new Error('current must be {room} or {dm}')
  }
  if (!isObject(raw.seenRooms)) throw new Error('seenRooms must be an object')
  for (const [room, id] of Object.entries(raw.seenRooms)) {
    if (!isRoomName(room) || typeof id !== 'string' || !MESSAGE_ID.test(id)) throw new Error('bad seenRooms entry')
    if (out.rooms.includes(room)) out.seenRooms[room] = id
  }
  if (raw.seenDms !== undefined) {
    if (typeof raw.seenDms !== 'string' || !MESSAGE_ID.test(raw.seenDms)) throw new Error('bad seenDms')
    out.seenDms = raw.seenDms
  }
  return out
}
