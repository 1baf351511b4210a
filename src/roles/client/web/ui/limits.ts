// The page's wording of the shared limits (src/limits.ts: the one message size and
// password rule, which the terminal client and the server use too), so the page and
// the local API refuse before anything is sent and say why in plain words.
import { MESSAGE_MAX_CHARS, PASSWORD_MIN, messageLength } from '../../../../limits.js'

export { MESSAGE_MAX_CHARS, PASSWORD_MIN, messageLength }

/** null when `text` fits, else a sentence saying by how much it is over */
export function messageTooLong (text: string): string | null {
  const n = messageLength(text)
  if (n <= MESSAGE_MAX_CHARS) return null
  return `This message is ${n.toLocaleString('en')} characters; the limit is ${MESSAGE_MAX_CHARS.toLocaleString('en')}. Shorten it by ${(n - MESSAGE_MAX_CHARS).toLocaleString('en')} or split it.`
}

export const PASSWORD_RULE = `A password is at least ${PASSWORD_MIN} characters.`
