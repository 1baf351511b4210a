// MarshmelloError: a stable code from the registry (src/error-codes.ts, listed in
// docs/PROTOCOL.md §9) and a message. The kind and the HTTP `statusCode` come from the
// registry, so a code means one thing everywhere. Tests assert `code`, never the message.
// Leaves out the HTTP reply shape (roles/common/http-errors.ts).
import { ERRORS, type ErrorCode, type ErrorKind } from './error-codes.js'

export { ERRORS, isErrorCode, type ErrorCode, type ErrorKind, type ErrorSpec } from './error-codes.js'

export interface MarshmelloErrorOptions extends ErrorOptions {
  /** fields a client may see beside code and message (HTTP 4xx answers only); never secrets */
  details?: Readonly<Record<string, string>>
}

export class MarshmelloError extends Error {
  readonly code: ErrorCode
  readonly kind: ErrorKind
  readonly statusCode: number
  readonly details?: Readonly<Record<string, string>>

  constructor (code: ErrorCode, message: string, options?: MarshmelloErrorOptions) {
    super(message, options)
    this.name = 'MarshmelloError'
    this.code = code
    if (options?.details) this.details = options.details
    const spec = ERRORS[code] ?? ERRORS.MM_ERR_INTERNAL
    this.kind = spec.kind
    this.statusCode = spec.status
  }
}

/** Thrown when input bytes have the wrong length (a truncated or oversized cell, key, frame). */
export const lengthError = (what: string, expected: string, got: number) =>
  new MarshmelloError('MM_ERR_LENGTH', `expected ${what} of ${expected} bytes, got length=${got}`)

export function isMarshmelloError (err: unknown): err is MarshmelloError {
  return err instanceof MarshmelloError
}
