// Errors with a stable code and a kind (docs/PROTOCOL.md §9 lists the codes).
// Tests assert `code`, never the message text. `statusCode` is what an HTTP
// handler answers when the error reaches it; protocol errors close a channel.

export type ErrorKind = 'protocol' | 'bad-input' | 'auth' | 'storage' | 'unavailable' | 'internal'

export class MarshmelloError extends Error {
  readonly code: string
  readonly kind: ErrorKind
  readonly statusCode: number

  constructor (code: string, kind: ErrorKind, message: string, statusCode?: number) {
    super(message)
    this.name = 'MarshmelloError'
    this.code = code
    this.kind = kind
    this.statusCode = statusCode ?? defaultStatus(kind)
  }
}

function defaultStatus (kind: ErrorKind): number {
  switch (kind) {
    case 'bad-input': return 400
    case 'protocol': return 400
    case 'auth': return 401
    case 'storage': return 503
    case 'unavailable': return 503
    default: return 500
  }
}

/** Thrown when input bytes have the wrong length (a truncated or oversized cell, key, frame). */
export const lengthError = (what: string, expected: string, got: number) =>
  new MarshmelloError('MM_ERR_LENGTH', 'protocol', `expected ${what} of ${expected} bytes, got length=${got}`)

export function isMarshmelloError (err: unknown): err is MarshmelloError {
  return err instanceof MarshmelloError
}
