// The storage errors and the one place that turns a driver error into a message safe
// to show: kind of store, URL without its password, one line of reason. Callers never
// pass a driver error on unwrapped: its text may carry a connection string.

import { MarshmelloError } from '../errors.js'
import { redactUrl, urlPassword } from './url.js'

export type StoreRole = 'users' | 'messages' | 'sessions'

/** The first line of a driver error, without the password it might quote. */
export function reasonOf (err: unknown, url?: string): string {
  const e = err as { message?: string, code?: string, errors?: unknown[] } | undefined
  let reason = (typeof e?.message === 'string' && e.message.trim() !== '') ? e.message : ''
  if (reason === '' && Array.isArray(e?.errors) && e.errors.length > 0) return reasonOf(e.errors[0], url)
  if (reason === '') reason = typeof e?.code === 'string' ? e.code : String(err)
  reason = reason.split('\n')[0].trim()
  const pw = url !== undefined ? urlPassword(url) : undefined
  if (pw !== undefined && pw !== '') reason = reason.split(pw).join('***')
  return reason
}

/** Thrown when a store cannot be opened (unreachable, refused credentials, unwritable file) or goes down while in use. */
export function storeUnavailable (role: StoreRole, url: string, err: unknown, what = 'is unreachable'): MarshmelloError {
  return new MarshmelloError('MM_ERR_STORE_UNAVAILABLE',
    `${role} store ${redactUrl(url)} ${what}: ${reasonOf(err, url)}`)
}

/** Thrown when a store URL has a scheme no implementation accepts, or lacks its path. */
export function storeUrlError (role: StoreRole, url: string, accepted: string[]): MarshmelloError {
  return new MarshmelloError('MM_ERR_STORE_URL',
    `${role} store URL ${redactUrl(url)} is not understood; expected one of: ${accepted.join(', ')}`)
}

/** Thrown when a store option is missing or malformed (e.g. a Redis session key that is not 32 bytes). */
export function storeConfigError (message: string): MarshmelloError {
  return new MarshmelloError('MM_ERR_STORE_CONFIG', message)
}

/** Thrown when stored bytes fail their integrity check (an encrypted session altered or sealed under another key). */
export function storeIntegrityError (message: string): MarshmelloError {
  return new MarshmelloError('MM_ERR_STORE_INTEGRITY', message)
}

/** Thrown by `create` when the name is taken, in any letter case. */
export const userExists = () => new MarshmelloError('MM_ERR_USER_EXISTS', 'username is taken')

/** Thrown by `setKeys` when there is no such user. */
export const userUnknown = () => new MarshmelloError('MM_ERR_USER_UNKNOWN', 'no such user')

/** Thrown by `addPrekeys` when a one-time prekey id is already stored for that user and kind. */
export const prekeyIdTaken = (kind: string, id: number) =>
  new MarshmelloError('MM_ERR_BAD_PREKEY', `one-time ${kind} prekey id ${id} is already stored`)

/** Thrown when a store is used after close(). */
export const storeClosed = (role: StoreRole) =>
  new MarshmelloError('MM_ERR_STORE_CLOSED', `${role} store is closed`)
