// The embedded user store: one better-sqlite3 file in WAL mode with synchronous=FULL,
// so a write is on disk (WAL fsynced) before its promise resolves and survives kill -9
// or power loss. Numbered migrations live in schema_migrations. One process owns the
// file; several server processes should share PostgreSQL instead.

import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { UserKeys, UserRecord, UserStore } from '../types.js'
import { storeClosed, storeUnavailable, userExists, userUnknown } from '../errors.js'

export interface SqliteUserStoreInit {
  /** file path; created with its directory when missing */
  path: string
}

/** Each entry runs once, in order, inside a transaction. */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     username TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     key_enc TEXT,
     key_sign TEXT,
     created_at INTEGER NOT NULL
   );
   CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
   CREATE TABLE revoked_tokens (
     jti TEXT PRIMARY KEY,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);`
]

interface Row { username: string, password_hash: string, key_enc: string | null, key_sign: string | null, created_at: number }

const PAGE = 500

function toRecord (r: Row): UserRecord {
  const keys: UserKeys | null = r.key_enc !== null && r.key_sign !== null ? { enc: r.key_enc, sign: r.key_sign } : null
  return { username: r.username, passwordHash: r.password_hash, keys, createdAt: Number(r.created_at) }
}

function migrate (db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)')
  const done = new Set((db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map(r => r.version))
  MIGRATIONS.forEach((sql, i) => {
    const version = i + 1
    if (done.has(version)) return
    db.transaction(() => {
      db.exec(sql)
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now())
    }).immediate()
  })
}

function isUniqueViolation (err: unknown): boolean {
  const code = (err as { code?: string }).code
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}

export function sqliteUserStore (init: SqliteUserStoreInit): UserStore {
  const url = `sqlite:${init.path}`
  let db: Database.Database
  try {
    mkdirSync(dirname(init.path), { recursive: true })
    // the single executable embeds the addon and hands it over (src/roles/common/sea.ts)
    const nativeBinding = (globalThis as { __marshmelloSqliteBinding?: () => object | undefined }).__marshmelloSqliteBinding?.()
    db = new Database(init.path, nativeBinding ? { nativeBinding } : {})
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('busy_timeout = 5000')
    migrate(db)
  } catch (err) {
    throw storeUnavailable('users', url, err, 'cannot be opened')
  }

  const q = {
    insert: db.prepare('INSERT INTO users (username, password_hash, key_enc, key_sign, created_at) VALUES (?, ?, ?, ?, ?)'),
    get: db.prepare('SELECT * FROM users WHERE lower(username) = lower(?)'),
    setKeys: db.prepare('UPDATE users SET key_enc = ?, key_sign = ? WHERE lower(username) = lower(?)'),
    revoke: db.prepare('INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)'),
    isRevoked: db.prepare('SELECT 1 FROM revoked_tokens WHERE jti = ?'),
    purge: db.prepare('DELETE FROM revoked_tokens WHERE expires_at <= ?'),
    count: db.prepare('SELECT count(*) AS n FROM users'),
    page: db.prepare('SELECT * FROM users WHERE username > ? ORDER BY username LIMIT ?')
  }
  let closed = false
  const open = () => { if (closed) throw storeClosed('users') }

  return {
    kind: 'sqlite',
    async create (user) {
      open()
      const createdAt = user.createdAt ?? Date.now()
      try {
        q.insert.run(user.username, user.passwordHash, user.keys?.enc ?? null, user.keys?.sign ?? null, createdAt)
      } catch (err) {
        if (isUniqueViolation(err)) throw userExists()
        throw err
      }
      return { username: user.username, passwordHash: user.passwordHash, keys: user.keys === null ? null : { ...user.keys }, createdAt }
    },
    async get (username) {
      open()
      const row = q.get.get(username) as Row | undefined
      return row === undefined ? undefined : toRecord(row)
    },
    async setKeys (username, keys) {
      open()
      if (q.setKeys.run(keys.enc, keys.sign, username).changes === 0) throw userUnknown()
    },
    async revokeToken (jti, expiresAt) {
      open()
      q.revoke.run(jti, expiresAt)
    },
    async isTokenRevoked (jti) {
      open()
      return q.isRevoked.get(jti) !== undefined
    },
    async purgeRevoked (now) {
      open()
      q.purge.run(now)
    },
    async count () {
      open()
      return Number((q.count.get() as { n: number }).n)
    },
    async * all () {
      // keyset pages: better-sqlite3 forbids other statements while an iterate() is open
      let last = ''
      for (;;) {
        open()
        const rows = q.page.all(last, PAGE) as Row[]
        for (const r of rows) yield toRecord(r)
        if (rows.length < PAGE) return
        last = rows[rows.length - 1].username
      }
    },
    async close () {
      if (closed) return
      closed = true
      db.close()
    }
  }
}
