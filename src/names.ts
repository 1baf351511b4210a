// The rules for the names people choose: usernames and room names (docs/PROTOCOL.md §6).
// One home for both, used by the server's schemas and token checks, the profile files,
// the terminal client and the web UI's browser code, so this file imports nothing. A
// name may be typed in any case; it is stored, compared and sent in lowercase. Leaves
// out relay nicknames (the directory's rule, §7.1) and message ids.

/** the characters of a stored name: lowercase ASCII letters, digits, `_` and `-` */
const STORED_CLASS = 'a-z0-9_-'
/** the same as typed, in either case */
const INPUT_CLASS = 'A-Za-z0-9_-'
const HTML_CLASS = 'A-Za-z0-9_\\-'

export const USERNAME_MIN = 3
export const USERNAME_MAX = 32
export const ROOM_MIN = 1
export const ROOM_MAX = 32

const anchored = (cls: string, min: number, max: number) => `^[${cls}]{${min},${max}}$`

/** JSON-schema `pattern` for a username as sent by a client (any case) */
export const USERNAME_INPUT = anchored(INPUT_CLASS, USERNAME_MIN, USERNAME_MAX)
/** JSON-schema `pattern` for a room name as sent by a client (any case) */
export const ROOM_INPUT = anchored(INPUT_CLASS, ROOM_MIN, ROOM_MAX)

/**
 * HTML `pattern` attributes for inputs that take a username or a room name: matched
 * whole, and compiled with the `v` flag, where a literal `-` in a class is escaped.
 */
export const USERNAME_HTML_PATTERN = `[${HTML_CLASS}]{${USERNAME_MIN},${USERNAME_MAX}}`
export const ROOM_HTML_PATTERN = `[${HTML_CLASS}]{${ROOM_MIN},${ROOM_MAX}}`

const USERNAME = new RegExp(anchored(STORED_CLASS, USERNAME_MIN, USERNAME_MAX))
const ROOM = new RegExp(anchored(STORED_CLASS, ROOM_MIN, ROOM_MAX))
const TYPED_USERNAME = new RegExp(USERNAME_INPUT)
const TYPED_ROOM = new RegExp(ROOM_INPUT)

/** the rules in plain words, for error messages and hints */
export const USERNAME_RULE = `a username is ${USERNAME_MIN}–${USERNAME_MAX} characters of letters, digits, _ and -`
export const ROOM_RULE = `a room name is ${ROOM_MIN}–${ROOM_MAX} characters of letters, digits, _ and -`

/** true for a username in its stored form (lowercase) */
export function isUsername (s: unknown): s is string {
  return typeof s === 'string' && USERNAME.test(s)
}

/** true for a room name in its stored form (lowercase) */
export function isRoomName (s: unknown): s is string {
  return typeof s === 'string' && ROOM.test(s)
}

/**
 * The stored form of a typed username, or null when it breaks the rule. The typed
 * form is checked before lowercasing, as the server's schema does: 'K' (U+212A, the
 * Kelvin sign) lowercases to an ASCII 'k' and must not pass.
 */
export function toUsername (typed: string): string | null {
  return TYPED_USERNAME.test(typed) ? typed.toLowerCase() : null
}

/** the stored form of a typed room name, or null when it breaks the rule (as toUsername) */
export function toRoomName (typed: string): string | null {
  return TYPED_ROOM.test(typed) ? typed.toLowerCase() : null
}
