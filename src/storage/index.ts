// Opens stores by URL-style option (docs/ARCHITECTURE.md §9): users `sqlite:PATH` | `postgres://…`,
// messages `nedb:PATH` | `mongodb://…` | `postgres://…`, sessions `memory` | `redis://…`.
// A postgres URL may name its schema with `?schema=NAME` (default `public`). A store that
// cannot be reached fails here, at open, with MM_ERR_STORE_UNAVAILABLE; roles receive
// the opened stores and never name an implementation. External drivers load lazily.

import { join, resolve } from 'node:path'
import type { MessageStore, SessionStore, SessionStoreInit, UserStore } from './types.js'
import { storeConfigError, storeUrlError, type StoreRole } from './errors.js'
import { sqliteUserStore } from './users/sqlite.js'
import { nedbMessageStore } from './messages/nedb.js'
import { lruSessionStore } from './sessions/lru.js'

export type { MessageStore, SessionStore, SessionStoreInit, UserStore } from './types.js'
export { redactUrl } from './url.js'
export { messageId } from './ids.js'

const ACCEPTED: Record<StoreRole, string[]> = {
  users: ['sqlite:PATH', 'postgres://USER:PASSWORD@HOST:PORT/DB[?schema=NAME]', 'postgresql://…'],
  messages: ['nedb:PATH', 'mongodb://USER:PASSWORD@HOST:PORT/DB', 'mongodb+srv://…', 'postgres://USER:PASSWORD@HOST:PORT/DB[?schema=NAME]'],
  sessions: ['memory', 'redis://[:PASSWORD@]HOST:PORT[/DB]', 'rediss://…']
}

export interface UserStoreOptions {
  /** PostgreSQL schema holding the tables; default `public` */
  schema?: string
  poolSize?: number
  connectTimeoutMs?: number
}

export interface MessageStoreOptions {
  /** PostgreSQL: schema holding the table (overridden by the URL's `?schema=`); default `public` */
  schema?: string
  poolSize?: number
  /** nedb: how often the file is compacted */
  compactIntervalMs?: number
  /** MongoDB: database (default: the URL's, else `marshmello`) and collection (default `messages`) */
  database?: string
  collection?: string
  connectTimeoutMs?: number
}

export interface SessionStoreOptions extends SessionStoreInit {
  /** Redis: the relay's own 32-byte key; values are sealed with AES-256-GCM under it. Required for redis://. */
  encryptionKey?: Uint8Array
  /** Redis: prefix of every key, so several relays or test runs can share a server */
  keyPrefix?: string
  connectTimeoutMs?: number
}

/** The embedded defaults, all in one data directory. */
export function defaultStoreUrls (dataDir: string): { users: string, messages: string, sessions: string } {
  const dir = resolve(dataDir)
  return { users: `sqlite:${join(dir, 'users.db')}`, messages: `nedb:${join(dir, 'messages.db')}`, sessions: 'memory' }
}

/**
 * Splits `?schema=NAME` off a postgres URL: the schema is ours, not a libpq
 * parameter. Other query parameters (sslmode, …) stay for the driver.
 */
export function postgresSchemaParam (url: string): { url: string, schema?: string } {
  const q = url.indexOf('?')
  if (q < 0) return { url }
  const hash = url.indexOf('#', q)
  const params = url.slice(q + 1, hash < 0 ? undefined : hash).split('&').filter(kv => kv !== '')
  let schema: string | undefined
  const rest = params.filter(kv => {
    if (!kv.startsWith('schema=')) return true
    schema = decodeURIComponent(kv.slice('schema='.length))
    return false
  })
  return { url: url.slice(0, q) + (rest.length > 0 ? '?' + rest.join('&') : ''), schema }
}

function pathAfter (role: StoreRole, url: string, prefix: string): string {
  const path = url.slice(prefix.length)
  if (path === '') throw storeUrlError(role, url, ACCEPTED[role])
  return path
}

export async function openUserStore (url: string, opts: UserStoreOptions = {}): Promise<UserStore> {
  if (url.startsWith('sqlite:')) return sqliteUserStore({ path: pathAfter('users', url, 'sqlite:') })
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { postgresUserStore } = await import('./users/postgres.js')
    const p = postgresSchemaParam(url)
    return await postgresUserStore({ ...opts, url: p.url, schema: p.schema ?? opts.schema })
  }
  throw storeUrlError('users', url, ACCEPTED.users)
}

export async function openMessageStore (url: string, opts: MessageStoreOptions = {}): Promise<MessageStore> {
  if (url.startsWith('nedb:')) {
    return await nedbMessageStore({ path: pathAfter('messages', url, 'nedb:'), compactIntervalMs: opts.compactIntervalMs })
  }
  if (/^mongodb(\+srv)?:\/\//.test(url)) {
    const { mongoMessageStore } = await import('./messages/mongo.js')
    return await mongoMessageStore({ url, database: opts.database, collection: opts.collection, connectTimeoutMs: opts.connectTimeoutMs })
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { postgresMessageStore } = await import('./messages/postgres.js')
    const p = postgresSchemaParam(url)
    return await postgresMessageStore({ url: p.url, schema: p.schema ?? opts.schema, poolSize: opts.poolSize, connectTimeoutMs: opts.connectTimeoutMs })
  }
  throw storeUrlError('messages', url, ACCEPTED.messages)
}

export async function openSessionStore (url: string, init: SessionStoreOptions): Promise<SessionStore> {
  if (url === 'memory' || url === 'memory:') return lruSessionStore({ maxEntries: init.maxEntries, ttlMs: init.ttlMs })
  if (/^rediss?:\/\//.test(url)) {
    if (init.encryptionKey === undefined) throw storeConfigError('the redis session store needs encryptionKey (the relay\'s own 32-byte key)')
    const { redisSessionStore } = await import('./sessions/redis.js')
    return await redisSessionStore({ ...init, url, encryptionKey: init.encryptionKey })
  }
  throw storeUrlError('sessions', url, ACCEPTED.sessions)
}

export interface StoresConfig<K extends StoreRole> {
  /** which stores to open: a server opens users and messages, a relay sessions */
  open: readonly K[]
  /** where embedded stores keep their files, for every URL not given */
  dataDir?: string
  users?: string
  messages?: string
  sessions?: string
  userOptions?: UserStoreOptions
  messageOptions?: MessageStoreOptions
  /** bounds (and Redis key) for the session store; required when opening sessions */
  session?: SessionStoreOptions
}

interface StoreOf { users: UserStore, messages: MessageStore, sessions: SessionStore }

export type Stores<K extends StoreRole> = { [P in K]: StoreOf[P] } & { close (): Promise<void> }

/** Opens the requested stores; if one fails, closes those already open and rethrows. */
export async function createStores<K extends StoreRole> (config: StoresConfig<K>): Promise<Stores<K>> {
  const urlFor = (role: StoreRole): string => {
    const given = config[role]
    if (given !== undefined) return given
    if (config.dataDir === undefined) throw storeConfigError(`no ${role} store URL and no data directory for the embedded default`)
    return defaultStoreUrls(config.dataDir)[role]
  }
  const opened: Array<{ close (): Promise<void> }> = []
  const out: Partial<StoreOf> = {}
  try {
    for (const role of new Set(config.open)) {
      if (role === 'users') opened.push(out.users = await openUserStore(urlFor('users'), config.userOptions))
      else if (role === 'messages') opened.push(out.messages = await openMessageStore(urlFor('messages'), config.messageOptions))
      else {
        if (config.session === undefined) throw storeConfigError('opening the session store needs session bounds (maxEntries, ttlMs)')
        opened.push(out.sessions = await openSessionStore(urlFor('sessions'), config.session))
      }
    }
  } catch (err) {
    await Promise.allSettled(opened.map(async s => await s.close()))
    throw err
  }
  const close = async () => { await Promise.allSettled(opened.map(async s => await s.close())) }
  return { ...out, close } as Stores<K>
}
