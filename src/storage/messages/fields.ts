// Conversions shared by the message stores: a StoredMessage without absent optional
// fields, and the argument checks done where a message enters a store.

import { MarshmelloError } from '../../errors.js'
import type { MessageQuery, NewMessage, RoomQuery, StoredMessage } from '../types.js'

/** Copies the fields of StoredMessage from a stored document, dropping everything else. */
export function toMessage (d: { id: string, from: string, room?: string | null, to?: string | null, clientId: string, body: string, sentAt: number, expiresAt?: number | Date | null }): StoredMessage {
  const m: StoredMessage = { id: d.id, from: d.from, clientId: d.clientId, body: d.body, sentAt: Number(d.sentAt) }
  if (d.room != null) m.room = d.room
  if (d.to != null) m.to = d.to
  if (d.expiresAt != null) m.expiresAt = d.expiresAt instanceof Date ? d.expiresAt.getTime() : Number(d.expiresAt)
  return m
}

/** Thrown when a message has neither or both of room and to, or a query neither or both of room and dmUser. */
export function checkNewMessage (msg: NewMessage): void {
  if ((msg.room === undefined) === (msg.to === undefined)) {
    throw new MarshmelloError('MM_ERR_MESSAGE_TARGET', 'expected a message with exactly one of room or to')
  }
}

export function checkQuery (q: MessageQuery): void {
  if ((q.room === undefined) === (q.dmUser === undefined)) {
    throw new MarshmelloError('MM_ERR_MESSAGE_QUERY', 'expected a query with exactly one of room or dmUser')
  }
  if (q.newest === true && q.after !== undefined) {
    throw new MarshmelloError('MM_ERR_MESSAGE_QUERY', 'expected either newest or after, not both')
  }
  if (q.before !== undefined && (q.after !== undefined || q.newest === true)) {
    throw new MarshmelloError('MM_ERR_MESSAGE_QUERY', 'expected before alone, not with after or newest')
  }
  if (!Number.isInteger(q.limit) || q.limit < 1) {
    throw new MarshmelloError('MM_ERR_MESSAGE_QUERY', `expected limit to be a positive integer, got ${q.limit}`)
  }
}

export function checkRoomQuery (q: RoomQuery): void {
  if (!Number.isInteger(q.limit) || q.limit < 1) {
    throw new MarshmelloError('MM_ERR_MESSAGE_QUERY', `expected limit to be a positive integer, got ${q.limit}`)
  }
  if (q.after !== undefined && typeof q.after !== 'string') {
    throw new MarshmelloError('MM_ERR_MESSAGE_QUERY', 'expected after to be a room name')
  }
}
