// The limits the server enforces, known to the page and the local API so both refuse
// before anything is sent and say why in plain words: a message's text (messages.ts
// MAX_TEXT_CHARS, a JSON-schema maxLength, which counts Unicode code points) and a new
// password's length (auth.ts). A local stand-in: the shared constants of the terminal
// client's branch (src/names.ts or src/limits.ts) replace these when both are merged.

/** the most characters (Unicode code points) a message text may have */
export const MESSAGE_MAX_CHARS = 4000

/** the length the server counts: code points, not UTF-16 units */
export function messageLength (text: string): number {
  let n = 0
  for (const _ of text) n++
  return n
}

/** null when `text` fits, else a sentence saying by how much it is over */
export function messageTooLong (text: string): string | null {
  const n = messageLength(text)
  if (n <= MESSAGE_MAX_CHARS) return null
  return `This message is ${n.toLocaleString('en')} characters; the limit is ${MESSAGE_MAX_CHARS.toLocaleString('en')}. Shorten it by ${(n - MESSAGE_MAX_CHARS).toLocaleString('en')} or split it.`
}

/** the shortest password the server accepts at sign-up */
export const PASSWORD_MIN = 8

export const PASSWORD_RULE = `A password is at least ${PASSWORD_MIN} characters.`
