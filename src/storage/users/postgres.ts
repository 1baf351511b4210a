// The shared user store: PostgreSQL through a pg Pool, parameterised queries only,
// numbered migrations in schema_migrations applied under an advisory lock so several
// server processes can start at once. A database that goes away turns into
// MM_ERR_STORE_UNAVAILABLE (503) per request; the pool reconnects by itself.

import type { ClaimedPrekeys, OneTimeKind, StoredPrekey, UserKeys, UserRecord, UserStore } from '../types.js'
import { prekeyIdTaken, userExists, userUnknown } from '../errors.js'
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
    CREATE INDEX revoked_tokens_expires_at ON ${s}.revoked_tokens (expires_at);`,
  // PQXDH prekeys (docs/PROTOCOL.md §11.2), as in the SQLite store
  s => `CREATE TABLE ${s}.signed_prekeys (
      username TEXT COLLATE "C" PRIMARY KEY,
      spk_id BIGINT, spk_key TEXT, spk_sig TEXT,
      lr_id BIGINT, lr_key TEXT, lr_sig TEXT
    );
    CREATE TABLE ${s}.one_time_prekeys (
      username TEXT COLLATE "C" NOT NULL,
      kind TEXT NOT NULL,
      id BIGINT NOT NULL,
      key TEXT NOT NULL,
      signature TEXT,
      PRIMARY KEY (username, kind, id)
    );`,
  // sealed sender (PROTOCOL §12.3): the delivery token's hash and the strangers setting
  s => `ALTER TABLE ${s}.users ADD COLUMN access_verifier TEXT;
    ALTER TABLE ${s}.users ADD COLUMN allow_strangers BOOLEAN NOT NULL DEFAULT true;`
]

interface OneTimeRow { id: string, key: string, signature: string | null }
const oneTime = (r: OneTimeRow): StoredPrekey => r.signature === null ? { id: Number(r.id), key: r.key } : { id: Number(r.id), key: r.key, signature: r.signature }

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
  const canonical = async (username: string): Promise<string> => {
    const { rows } = await query<{ username: string }>(`SELECT username FROM ${s}.users WHERE lower(username) = lower($1)`, [username])
    if (rows.length === 0) throw userUnknown()
    return rows[0].username
  }
  /** several statements in one transaction on one pooled client */
  const inTransaction = async (fn: (q: (sql: string, params: unknown[]) => Promise<{ rowCount: number | null }>) => Promise<void>): Promise<void> => {
    if (db.closed) await query('SELECT 1', []) // throws the store-closed error
    const c = await db.pool.connect()
    try {
      await c.query('BEGIN')
      await fn((sql, params) => c.query(sql, params))
      await c.query('COMMIT')
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }
  // DELETE … RETURNING of a row locked with SKIP LOCKED: two claims at once (any process) take two different keys
  const takeOneTime = async (name: string, kind: OneTimeKind): Promise<StoredPrekey | undefined> => {
    const { rows } = await query<OneTimeRow>(`DELETE FROM ${s}.one_time_prekeys WHERE (username, kind, id) IN (
        SELECT username, kind, id FROM ${s}.one_time_prekeys WHERE username = $1 AND kind = $2 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
      ) RETURNING id, key, signature`, [name, kind])
    return rows.length === 0 ? undefined : oneTime(rows[0])
  }

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
      await inTransaction(async q => {
        const r = await q(`UPDATE ${s}.users SET key_enc = $1, key_sign = $2 WHERE lower(username) = lower($3)`, [keys.enc, keys.sign, username])
        if (r.rowCount === 0) throw userUnknown()
        await q(`DELETE FROM ${s}.signed_prekeys WHERE lower(username) = lower($1)`, [username])
        await q(`DELETE FROM ${s}.one_time_prekeys WHERE lower(username) = lower($1)`, [username])
      })
    },
    async addPrekeys (username, u) {
      const name = await canonical(username)
      await inTransaction(async q => {
        await q(`INSERT INTO ${s}.signed_prekeys (username) VALUES ($1) ON CONFLICT (username) DO NOTHING`, [name])
        if (u.signedPrekey) await q(`UPDATE ${s}.signed_prekeys SET spk_id = $1, spk_key = $2, spk_sig = $3 WHERE username = $4`, [u.signedPrekey.id, u.signedPrekey.key, u.signedPrekey.signature ?? null, name])
        if (u.lastResortKem) await q(`UPDATE ${s}.signed_prekeys SET lr_id = $1, lr_key = $2, lr_sig = $3 WHERE username = $4`, [u.lastResortKem.id, u.lastResortKem.key, u.lastResortKem.signature ?? null, name])
        for (const [kind, list] of [['ec', u.oneTime], ['kem', u.oneTimeKem]] as const) {
          for (const k of list ?? []) {
            try {
              await q(`INSERT INTO ${s}.one_time_prekeys (username, kind, id, key, signature) VALUES ($1, $2, $3, $4, $5)`, [name, kind, k.id, k.key, k.signature ?? null])
            } catch (err) {
              if ((err as { code?: string }).code === '23505') throw prekeyIdTaken(kind, k.id)
              throw err
            }
          }
        }
      })
    },
    async prekeyCounts (username) {
      const name = await canonical(username)
      const counts = (await query<{ kind: OneTimeKind, n: number }>(`SELECT kind, count(*)::int AS n FROM ${s}.one_time_prekeys WHERE username = $1 GROUP BY kind`, [name])).rows
      const sp = (await query<{ spk_id: string | null, lr_id: string | null }>(`SELECT spk_id, lr_id FROM ${s}.signed_prekeys WHERE username = $1`, [name])).rows[0]
      const n = (kind: OneTimeKind) => counts.find(c => c.kind === kind)?.n ?? 0
      return {
        oneTime: n('ec'), oneTimeKem: n('kem'),
        signedPrekeyId: sp?.spk_id == null ? undefined : Number(sp.spk_id), lastResortId: sp?.lr_id == null ? undefined : Number(sp.lr_id)
      }
    },
    async claimPrekeys (username, opts) {
      const name = await canonical(username)
      const { rows } = await query<{ spk_id: string, spk_key: string | null, spk_sig: string, lr_id: string, lr_key: string | null, lr_sig: string }>(
        `SELECT spk_id, spk_key, spk_sig, lr_id, lr_key, lr_sig FROM ${s}.signed_prekeys WHERE username = $1`, [name])
      const sp = rows[0]
      if (sp === undefined || sp.spk_key === null || sp.lr_key === null) return undefined
      const oneTime = opts?.oneTime !== false
      const kem = oneTime ? await takeOneTime(name, 'kem') : undefined
      const ec = oneTime ? await takeOneTime(name, 'ec') : undefined
      const out: ClaimedPrekeys = {
        signedPrekey: { id: Number(sp.spk_id), key: sp.spk_key, signature: sp.spk_sig },
        kemPrekey: kem === undefined ? { id: Number(sp.lr_id), key: sp.lr_key, signature: sp.lr_sig, lastResort: true } : { ...kem, lastResort: false }
      }
      if (ec !== undefined) out.oneTimePrekey = ec
      return out
    },
    async getSealedAccess (username) {
      const { rows } = await query<{ access_verifier: string | null, allow_strangers: boolean }>(`SELECT access_verifier, allow_strangers FROM ${s}.users WHERE lower(username) = lower($1)`, [username])
      return rows.length === 0 ? undefined : { verifier: rows[0].access_verifier, allowStrangers: rows[0].allow_strangers }
    },
    async setSealedAccess (username, access) {
      const r = await query(`UPDATE ${s}.users SET access_verifier = $1, allow_strangers = $2 WHERE lower(username) = lower($3)`, [access.verifier, access.allowStrangers, username])
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
