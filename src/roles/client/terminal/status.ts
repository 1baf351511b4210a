// The status line of the terminal chat, which is its prompt: where you are, then only
// what needs attention: unread counts per room and per DM peer, "offline", messages
// waiting to be sent and those that failed. "[#lobby] > " when all is quiet,
// "[#lobby] (#dev 2 · @bob 1 · offline · 1 to send) > " when not. Pure.
import type { OutboxItem } from '../outbox.js'

export interface StatusInput {
  view: { room: string } | { dm: string }
  unreadRooms: ReadonlyMap<string, number>
  unreadDms: ReadonlyMap<string, number>
  online: boolean
  outbox: ReadonlyArray<Readonly<Pick<OutboxItem, 'state'>>>
}

/** counts above this are shown as "199+" (a room is read 200 messages at a time) */
const MAX_COUNT = 199

const count = (n: number) => n > MAX_COUNT ? `${MAX_COUNT}+` : String(n)

export function statusPrompt (s: StatusInput): string {
  const here = 'room' in s.view ? `#${s.view.room}` : `@${s.view.dm}`
  const parts: string[] = []
  for (const [room, n] of s.unreadRooms) if (n > 0 && !('room' in s.view && s.view.room === room)) parts.push(`#${room} ${count(n)}`)
  for (const [peer, n] of s.unreadDms) if (n > 0 && !('dm' in s.view && s.view.dm === peer)) parts.push(`@${peer} ${count(n)}`)
  if (!s.online) parts.push('offline')
  const waiting = s.outbox.filter((i) => i.state === 'queued' || i.state === 'sending').length
  const failed = s.outbox.filter((i) => i.state === 'failed').length
  if (waiting) parts.push(`${waiting} to send`)
  if (failed) parts.push(`${failed} not sent: /retry`)
  return `[${here}]${parts.length ? ` (${parts.join(' · ')})` : ''} > `
}
