// The shared user store: PostgreSQL through a pg Pool, parameterised queries only,
// numbered migrations in schema_migrations applied under an advisory lock so several
// server processes can start at once. A database that goes away turns into
// MM_ERR_STORE_UNAVAILABLE (503) per request; the pool reconnects by itself.

import type { UserKeys, UserRecord, UserStore } from '../types.js'
import { userExists, userUnknown } from '../errors.js'
import { openPgStore, type PgStoreInit } from '../postgres.js'

export type PostgresUserStoreInit = PgStoreInit

/** Each entry runs once, in order; `s` is the quoted schema name. */
const MIGRATIONS: Array<(s: string) => string> = [
  s => `CREATE TABLE ${s}.users (
      username TEXT COLLATE "C" PRIMARY KEY,
      password_hash TEXT NOT NULL,
      key_enc TEXT,
      key_sign TEXT,
      created_at BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX users_username_lower ON ${s}.users (lower(username));
    CREATE TABLE ${s}.revoked_tokens (
      jti TEXT PRIMARY KEY,
      expires_at BIGINT NOT NULL
    );
    CREATE INDEX revoked_tokens_expires_at ON ${s}.revoked_tokens (expires_at);`
]

interface Row { username: string, password_hash: string, key_enc: string | null, key_sign: string | null, created_at: string }

const PAGE = 500

function toRecord (r: Row): UserRecord {
  const keys: UserKeys | null = r.key_enc !== null && r.key_sign !== null ? { enc: r.key_enc, sign: r.key_sign } : null
  return { username: r.username, passwordHash: r.password_hash, keys, createdAt: Number(r.created_at) }
}

export async function postgresUserStore (init: PostgresUserStoreInit): Promise<UserStore> {
  // the version table and lock name predate the shared helper: existing databases keep them
  const db = await openPgStore('users', init, { table: 'schema_migrations', lock: 'marshmello:migrate:{schema}', steps: MIGRATIONS })
  const { s, query } = db
  const COLS = 'username, password_hash, key_enc, key_sign, created_at'

  return {
    kind: 'postgres',
    async create (user) {
      const createdAt = user.createdAt ?? Date.now()
      try {
        await query(`INSERT INTO ${s}.users (${COLS}) VALUES ($1, $2, $3, $4, $5)`,
          [user.username, user.passwordHash, user.keys?.enc ?? null, user.keys?.sign ?? null, createdAt])
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw userExists()
        throw err
      }
      return { username: user.username, passwordHash: user.passwordHash, keys: user.keys === null ? null : { ...user.keys }, createdAt }
    },
    async get (username) {
      const { rows } = await query<Row>(`SELECT ${COLS} FROM ${s}.users WHERE lower(username) = lower($1)`, [username])
      return rows.length === 0 ? undefined : toRecord(rows[0])
    },
    async setKeys (username, keys) {
      const r = await query(`UPDATE ${s}.users SET key_enc = $1, key_sign = $2 WHERE lower(username) = lower($3)`, [keys.enc, keys.sign, username])
      if (r.rowCount === 0) throw userUnknown()
    },
    async revokeToken (jti, expiresAt) {
      await query(`INSERT INTO ${s}.revoked_tokens (jti, expires_at) VALUES ($1, $2)
        ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(${s}.revoked_tokens.expires_at, EXCLUDED.expires_at)`, [jti, expiresAt])
    },
    async isTokenRevoked (jti) {
      return (await query(`SELECT 1 FROM ${s}.revoked_tokens WHERE jti = $1`, [jti])).rows.length > 0
    },
    async purgeRevoked (now) {
      await query(`DELETE FROM ${s}.revoked_tokens WHERE expires_at <= $1`, [now])
    },
    async count () {
      return (await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${s}.users`, [])).rows[0].n
    },
    async * all () {
      let last = ''
      for (;;) {
        const { rows } = await query<Row>(`SELECT ${COLS} FROM ${s}.users WHERE username > $1 ORDER BY username LIMIT $2`, [last, PAGE])
        for (const r of rows) yield toRecord(r)
        if (rows.length < PAGE) return
        last = rows[rows.length - 1].username
      }
    },
    async close () {
      await db.close()
    }
  }
}
