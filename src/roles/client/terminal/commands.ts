// The slash commands of the terminal chat. Each takes the whole rest of the line as its
// argument, so `/join bad room!` is refused with the rule instead of joining `#bad`.
import { ROOM_RULE, USERNAME_RULE, toRoomName, toUsername } from '../../../names.js'
import { MAX_JOINED } from '../profile/chat-state.js'
import type { ChatSession } from './chat-session.js'
import { chatTime } from './format.js'

/** rooms of the server listed by one /rooms */
const ROOM_PAGE = 30

export const HELP = [
  'commands:',
  '  /join ROOM     go to a room (joined rooms are kept; a room is created by its first message)',
  '  /leave [ROOM]  stop following a room (default: this one)',
  '  /rooms [NAME]  your rooms with unread counts, then the rooms on the server (from after NAME)',
  '  /older         the page of history before the oldest message shown here',
  '  /dm USER       talk to USER, end-to-end encrypted (shows your last DMs with them)',
  '  /dms           the people you have DMs with, with unread counts',
  '  /retry N       send message N again after it failed',
  '  /whois USER    show USER\'s key fingerprint and your safety number with them',
  '  /verify USER   mark USER verified once your safety numbers match (read them aloud or compare in person)',
  '  /trust USER    accept USER\'s changed key after checking it with them',
  '  /circuit       show the current circuit (relays and fingerprints)',
  '  /newcircuit    build a fresh circuit',
  '  /help          this list',
  '  /quit          leave',
]

/** runs one slash command; returns 'quit' when the user asked to leave */
export async function runCommand (s: ChatSession, line: string): Promise<'quit' | undefined> {
  const m = /^(\/\S*)\s*(.*)$/s.exec(line.trim())!
  const cmd = m[1]
  const arg = m[2].trim()
  const say = (...l: string[]) => s.screen.say(...l)
  const user = () => {
    const u = toUsername(arg)
    if (u === null) say(arg ? `! ${USERNAME_RULE}` : `usage: ${cmd} USER`)
    return u
  }
  switch (cmd) {
    case '/help': say(...HELP); return
    case '/quit': return 'quit'
    case '/join': {
      const room = toRoomName(arg)
      if (room === null) { say(arg ? `! not joined: ${ROOM_RULE}` : `usage: /join ROOM (${ROOM_RULE})`); return }
      if (!s.enterRoom(room)) { say(`! you follow ${MAX_JOINED} rooms already; /leave one first`); return }
      say(`joined #${room}`)
      return
    }
    case '/leave': {
      const here = 'room' in s.view ? s.view.room : null
      const room = arg ? toRoomName(arg) : here
      if (room === null) { say(arg ? `! ${ROOM_RULE}` : 'usage: /leave ROOM'); return }
      s.leave(room)
      say(`left #${room}`)
      if (room === here) { s.enterRoom(s.state.rooms[0] ?? 'lobby'); say(`now in #${'room' in s.view ? s.view.room : ''}`) }
      return
    }
    case '/rooms': {
      const after = arg ? toRoomName(arg) : undefined
      if (after === null) { say(`! ${ROOM_RULE}`); return }
      const rooms = s.state.rooms
      if (after === undefined) {
        if (!rooms.length) say('no rooms joined; /join ROOM')
        else {
          say('your rooms:', ...rooms.map((r) => {
            const here = 'room' in s.view && s.view.room === r
            const n = s.unreadRooms.get(r) ?? 0
            return `  #${r}${here ? '  (here)' : n ? `  ${n} unread` : ''}`
          }))
        }
      }
      // names are checked by listRooms (the room rule), so they are safe to print
      const list = await s.client.listRooms({ after, limit: ROOM_PAGE })
      if (!list.rooms.length) { say(after ? `no rooms on the server after #${after}` : 'no rooms on the server hold messages yet'); return }
      const now = s.clock.now()
      say(`rooms on the server${after ? ` after #${after}` : ''} (by name):`, ...list.rooms.map((r) =>
        `  #${r.name}  ${r.messages} message${r.messages === 1 ? '' : 's'}, last ${chatTime(r.lastAt, now)}${rooms.includes(r.name) ? '  (joined)' : ''}`))
      if (list.hasMore && list.cursor) say(`  … more: /rooms ${list.cursor}`)
      return
    }
    case '/older': {
      if (!await s.showOlder()) say('nothing older here')
      return
    }
    case '/dms': {
      const peers = await s.client.dmPeers()
      if (!peers.length) { say('no DMs yet; /dm USER starts one'); return }
      say('your DMs:', ...peers.map((p) => {
        const n = s.unreadDms.get(p) ?? 0
        return `  @${p}${'dm' in s.view && s.view.dm === p ? '  (here)' : n ? `  ${n} unread` : ''}`
      }))
      return
    }
    case '/dm': {
      const u = user()
      if (u === null) return
      // looked up quietly (a circuit of its own, no token): a changed key is still caught here
      const w = await s.client.whois(u)
      if (w.status === 'changed') { say(`⚠ WARNING: ${w.username}'s key CHANGED (now ${w.fingerprint}). Verify it with them, then /trust ${w.username}.`); return }
      say(`DMs with ${w.username} are end-to-end encrypted; their key fingerprint: ${w.fingerprint}${w.status === 'new' ? ' (first seen, now pinned)' : ''}${w.verified ? ' ✓ verified' : ''}`)
      await s.openDm(w.username)
      return
    }
    case '/retry': {
      const n = Number(arg)
      if (!Number.isInteger(n) || !s.retry(n)) say(`! no failed message ${arg || '(give its number)'}`)
      return
    }
    case '/whois': {
      const u = user()
      if (u === null) return
      const w = await s.client.whois(u)
      say(`${w.username}: ${w.fingerprint}${w.status === 'changed' ? '  ⚠ CHANGED since first seen: verify, then /trust' : w.status === 'new' ? '  (first seen, now pinned)' : '  (matches the pinned key)'}`,
        `  safety number: ${w.safetyNumber}${w.verified ? '  ✓ verified' : `  (compare it with ${w.username}, then /verify ${w.username})`}`,
        `  QR: ${w.safetyQr}`)
      return
    }
    case '/verify': {
      const u = user()
      if (u === null) return
      const w = await s.client.verify(u)
      say(`✓ ${w.username} verified (safety number ${w.safetyNumber})`)
      return
    }
    case '/trust': {
      const u = user()
      if (u === null) return
      say(`now trusting ${u}'s key ${await s.client.trust(u)}`)
      return
    }
    case '/circuit': {
      await s.client.circuits.current()
      const hops = s.client.circuits.describe()
      say(['you', ...hops.map((h, i) => `${i === hops.length - 1 ? 'server' : `relay ${i + 1}`} ${h.nickname} ${h.fingerprint.slice(0, 16)}… at ${h.host}:${h.port}`)].join('\n  → '))
      return
    }
    case '/newcircuit':
      await s.client.circuits.newCircuit()
      say(`new circuit: ${s.client.circuits.describe().map((h) => h.nickname || h.role).join(' → ')}`)
      return
    default:
      say(`unknown command ${cmd}; /help lists them`)
  }
}
