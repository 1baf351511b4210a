// How a message looks in the terminal and in `read`: every field from the network
// through safeText (safe-text.ts), local times, a verified DM marked ✓ and one that
// failed marked ⚠. The chat shows HH:MM:SS for today and the date before older times;
// `read` prints full local date-times with the UTC offset (unambiguous in a log). An
// offset is also shown when it differs from the current one (across a DST change, the
// repeated hour is ambiguous otherwise). Leaves out JSON output (jsonMessage, raw).
import type { ChatMessage } from '../chat-client.js'
import { safeText } from './safe-text.js'

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

/** "+01:00" for a Date in the local zone */
export function utcOffset (d: Date): string {
  const off = -d.getTimezoneOffset()
  const sign = off < 0 ? '-' : '+'
  const a = Math.abs(off)
  return `${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`
}

const dateOf = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
const clockOf = (d: Date) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`

/**
 * A time for the chat: "HH:MM:SS" today, "YYYY-MM-DD HH:MM:SS" before; the offset is
 * added when it is not the current one (so the hour a DST change repeats is told apart).
 */
export function chatTime (ms: number, now: number = Date.now()): string {
  const d = new Date(ms)
  const today = new Date(now)
  const day = dateOf(d) === dateOf(today) ? '' : `${dateOf(d)} `
  const off = utcOffset(d) === utcOffset(today) ? '' : ` ${utcOffset(d)}`
  return `${day}${clockOf(d)}${off}`
}

/** "YYYY-MM-DD HH:MM:SS+01:00": a local time that means one instant */
export function fullTime (ms: number): string {
  const d = new Date(ms)
  return `${dateOf(d)} ${clockOf(d)}${utcOffset(d)}`
}

/** the local zone in words, for the line that says what times mean */
export function zoneDescription (now: number = Date.now()): string {
  let name = ''
  try { name = Intl.DateTimeFormat().resolvedOptions().timeZone ?? '' } catch { /* no Intl zone data */ }
  return `${name ? `${name}, ` : ''}UTC${utcOffset(new Date(now))}`
}

export interface FormatOptions {
  /** 'chat' (default): short times; 'log': full local date-times with offset (`read`) */
  style?: 'chat' | 'log'
  now?: number
}

/** one message on one line, every network field made safe */
export function formatMessage (m: ChatMessage, opts: FormatOptions = {}): string {
  const t = opts.style === 'log' ? fullTime(m.sentAt) : chatTime(m.sentAt, opts.now)
  const from = safeText(m.from)
  if (m.room) return `[${t}] #${safeText(m.room)} ${from}: ${safeText(m.text ?? '')}`
  const where = `${from} → ${safeText(m.to ?? '')}`
  if (m.verified) return `[${t}] ✓ ${where}: ${safeText(m.text ?? '')}${m.warning ? `  (${safeText(m.warning)})` : ''}`
  return `[${t}] ⚠ ${where}: ${safeText(m.warning ?? 'not verified')}`
}

/** DEL, C1 controls, bidi controls and separators, which JSON.stringify leaves raw */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * The JSON line of `read --json` and `send --json`: JSON.stringify escapes C0 controls,
 * and the rest a terminal could act on is written as \uXXXX too (the same JSON value).
 */
export function jsonMessage (m: ChatMessage): string {
  return stringify(m.room
    ? { id: m.id, from: m.from, room: m.room, text: m.text, sentAt: m.sentAt }
    : {
      id: m.id, from: m.from, to: m.to, text: m.text, sentAt: m.sentAt, verified: m.verified === true, ...(m.warning ? { warning: m.warning } : {}),
      ...(m.safetyNumber ? { safetyNumber: m.safetyNumber, contactVerified: m.contactVerified === true } : {})
    })
}

const stringify = (v: unknown) => JSON.stringify(v).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
