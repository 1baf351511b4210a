// JSON schemas shared by the API services: name patterns (from the one set of name
// rules, src/names.ts), the public message shape, and the error body every 4xx/5xx
// carries. Each route adds its own body, params and query schemas next to its handler.
// Query values are strings (types are not coerced).

export { ROOM_INPUT, USERNAME_INPUT } from '../../../names.js'
/** base64 of exactly 32 bytes, canonical padding */
export const KEY_B64 = '^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$'
export const CLIENT_ID = '^[A-Za-z0-9_.:-]{1,64}$'
export const MESSAGE_ID = '^[A-Za-z0-9_.:-]{1,64}$'

export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const

/** merge into every route's `response` */
export const errorResponses = { '4xx': errorSchema, '5xx': errorSchema } as const

export const keysSchema = {
  type: 'object',
  properties: {
    enc: { type: 'string', pattern: KEY_B64 },
    sign: { type: 'string', pattern: KEY_B64 },
  },
  required: ['enc', 'sign'],
  additionalProperties: false,
} as const

/** One message as the API shows it: room messages and DMs alike carry `body`. */
export const messageSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    from: { type: 'string' },
    room: { type: 'string' },
    to: { type: 'string' },
    clientId: { type: 'string' },
    body: { type: 'string' },
    sentAt: { type: 'number' },
    expiresAt: { type: 'number' },
  },
  required: ['id', 'from', 'clientId', 'body', 'sentAt'],
} as const

export const pageSchema = {
  type: 'object',
  properties: {
    messages: { type: 'array', items: messageSchema },
    cursor: { type: ['string', 'null'] },
    hasMore: { type: 'boolean' },
  },
  required: ['messages', 'cursor', 'hasMore'],
} as const

export const healthSchema = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, service: { type: 'string' } },
  required: ['ok', 'service'],
} as const

/** false when `s` holds a lone UTF-16 surrogate (what String#isWellFormed checks, ES2024) */
export function isWellFormedText (s: string): boolean {
  return !/\p{Cs}/u.test(s)
}
