// The limits people meet when they write, in one place for the terminal client, the
// web UI (this file imports nothing, so the browser bundle can use it beside
// src/names.ts) and the README: one message size for rooms and DMs, counted in Unicode
// characters (code points, as the server's JSON schema counts `maxLength`), and the
// password length the server accepts at sign-up. Leaves out name rules (src/names.ts).

/** the longest message, rooms and DMs alike (the server's MAX_TEXT_CHARS; a DM's 4,000 characters fit its 16 KiB envelope) */
export const MESSAGE_MAX_CHARS = 4000
export const PASSWORD_MIN = 8
export const PASSWORD_MAX = 1024

/** the rules in plain words, for hints and refusals */
export const MESSAGE_RULE = `a message is at most ${MESSAGE_MAX_CHARS.toLocaleString('en-US')} characters`
export const PASSWORD_RULE = `a password is at least ${PASSWORD_MIN} characters long (at most ${PASSWORD_MAX.toLocaleString('en-US')})`

/** characters as the server counts them: code points, so an emoji is one */
export function messageLength (text: string): number {
  let n = 0
  for (const _ of text) n++
  return n
}

export type TextCheck =
  | { ok: true }
  | { ok: false, reason: 'empty' | 'too-long', length: number, explain: string }

/** whether `text` can be sent as one message, and if not why, in plain words */
export function checkMessageText (text: string): TextCheck {
  const length = messageLength(text)
  if (text.trim() === '') return { ok: false, reason: 'empty', length, explain: 'nothing to send: the message is empty' }
  if (length > MESSAGE_MAX_CHARS) {
    return { ok: false, reason: 'too-long', length, explain: `the message is ${length.toLocaleString('en-US')} characters; ${MESSAGE_RULE}. Not sent` }
  }
  return { ok: true }
}

/** why a new password would be refused at sign-up, in plain words, or null when it is fine */
export function passwordProblem (password: string): string | null {
  const n = messageLength(password)
  if (n < PASSWORD_MIN) return `that password is ${n} character${n === 1 ? '' : 's'}; ${PASSWORD_RULE}`
  if (n > PASSWORD_MAX) return `that password is too long; ${PASSWORD_RULE}`
  return null
}
