// The embedded user store: one better-sqlite3 file in WAL mode with synchronous=FULL,
// so a write is on disk (WAL fsynced) before its promise resolves and survives kill -9
// or power loss. Numbered migrations live in schema_migrations. One process owns the
// file; several server processes should share PostgreSQL instead.

import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { ClaimedPrekeys, OneTimeKind, StoredPrekey, UserKeys, UserRecord, UserStore } from '../types.js'
import { prekeyIdTaken, storeClosed, storeUnavailable, userExists, userUnknown } from '../errors.js'

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
   CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);`,
  // PQXDH prekeys (docs/PROTOCOL.md §11.2): the signed and last-resort ones per user, one-time ones by kind
  `CREATE TABLE signed_prekeys (
     username TEXT PRIMARY KEY,
     spk_id INTEGER, spk_key TEXT, spk_sig TEXT,
     lr_id INTEGER, lr_key TEXT, lr_sig TEXT
   );
   CREATE TABLE one_time_prekeys (
     username TEXT NOT NULL,
     kind TEXT NOT NULL,
     id INTEGER NOT NULL,
     key TEXT NOT NULL,
     signature TEXT,
     PRIMARY KEY (username, kind, id)
   );`,
  // sealed sender (PROTOCOL §12.3): the delivery token's hash and the strangers setting
  `ALTER TABLE users ADD COLUMN access_verifier TEXT;
   ALTER TABLE users ADD COLUMN allow_strangers INTEGER NOT NULL DEFAULT 1;`
]

interface SignedRow { spk_id: number | null, spk_key: string | null, spk_sig: string | null, lr_id: number | null, lr_key: string | null, lr_sig: string | null }
interface OneTimeRow { id: number, key: string, signature: string | null }
const oneTime = (r: OneTimeRow): StoredPrekey => r.signature === null ? { id: Number(r.id), key: r.key } : { id: Number(r.id), key: r.key, signature: r.signature }

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
    page: db.prepare('SELECT * FROM users WHERE username > ? ORDER BY username LIMIT ?'),
    canonical: db.prepare('SELECT username FROM users WHERE lower(username) = lower(?)'),
    dropSigned: db.prepare('DELETE FROM signed_prekeys WHERE username = ?'),
    dropOneTime: db.prepare('DELETE FROM one_time_prekeys WHERE username = ?'),
    ensureSigned: db.prepare('INSERT INTO signed_prekeys (username) VALUES (?) ON CONFLICT (username) DO NOTHING'),
    setSpk: db.prepare('UPDATE signed_prekeys SET spk_id = ?, spk_key = ?, spk_sig = ? WHERE username = ?'),
    setLr: db.prepare('UPDATE signed_prekeys SET lr_id = ?, lr_key = ?, lr_sig = ? WHERE username = ?'),
    addOneTime: db.prepare('INSERT INTO one_time_prekeys (username, kind, id, key, signature) VALUES (?, ?, ?, ?, ?)'),
    getSigned: db.prepare('SELECT spk_id, spk_key, spk_sig, lr_id, lr_key, lr_sig FROM signed_prekeys WHERE username = ?'),
    countOneTime: db.prepare('SELECT kind, count(*) AS n FROM one_time_prekeys WHERE username = ? GROUP BY kind'),
    firstOneTime: db.prepare('SELECT id, key, signature FROM one_time_prekeys WHERE username = ? AND kind = ? ORDER BY id LIMIT 1'),
    deleteOneTime: db.prepare('DELETE FROM one_time_prekeys WHERE username = ? AND kind = ? AND id = ?'),
    getAccess: db.prepare('SELECT access_verifier, allow_strangers FROM users WHERE lower(username) = lower(?)'),
    setAccess: db.prepare('UPDATE users SET access_verifier = ?, allow_strangers = ? WHERE lower(username) = lower(?)')
  }
  const canonical = (username: string): string => {
    const row = q.canonical.get(username) as { username: string } | undefined
    if (row === undefined) throw userUnknown()
    return row.username
  }
  // better-sqlite3 runs a transaction synchronously: no other claim can interleave (one process owns the file)
  const takeOneTime = (name: string, kind: OneTimeKind): StoredPrekey | undefined => {
    const row = q.firstOneTime.get(name, kind) as OneTimeRow | undefined
    if (row === undefined) return undefined
    q.deleteOneTime.run(name, kind, row.id)
    return oneTime(row)
  }
  const claim = db.transaction((name: string, oneTime: boolean): ClaimedPrekeys | undefined => {
    const s = q.getSigned.get(name) as SignedRow | undefined
    if (s === undefined || s.spk_key === null || s.lr_key === null) return undefined
    const kem = oneTime ? takeOneTime(name, 'kem') : undefined
    const ec = oneTime ? takeOneTime(name, 'ec') : undefined
    const out: ClaimedPrekeys = {
      signedPrekey: { id: Number(s.spk_id), key: s.spk_key, signature: s.spk_sig! },
      kemPrekey: kem === undefined ? { id: Number(s.lr_id), key: s.lr_key, signature: s.lr_sig!, lastResort: true } : { ...kem, lastResort: false }
    }
    if (ec !== undefined) out.oneTimePrekey = ec
    return out
  })
  const upload = db.transaction((name: string, u: Parameters<UserStore['addPrekeys']>[1]) => {
    q.ensureSigned.run(name)
    if (u.signedPrekey) q.setSpk.run(u.signedPrekey.id, u.signedPrekey.key, u.signedPrekey.signature ?? null, name)
    if (u.lastResortKem) q.setLr.run(u.lastResortKem.id, u.lastResortKem.key, u.lastResortKem.signature ?? null, name)
    for (const [kind, list] of [['ec', u.oneTime], ['kem', u.oneTimeKem]] as const) {
      for (const k of list ?? []) {
        try {
          q.addOneTime.run(name, kind, k.id, k.key, k.signature ?? null)
        } catch (err) {
          if (isUniqueViolation(err)) throw prekeyIdTaken(kind, k.id)
          throw err
        }
      }
    }
  })
  const rekey = db.transaction((username: string, keys: UserKeys) => {
    if (q.setKeys.run(keys.enc, keys.sign, username).changes === 0) throw userUnknown()
    const name = canonical(username)
    q.dropSigned.run(name)
    q.dropOneTime.run(name)
  })
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
      rekey(username, keys)
    },
    async addPrekeys (username, u) {
      open()
      upload(canonical(username), u)
    },
    async prekeyCounts (username) {
      open()
      const name = canonical(username)
      const counts = q.countOneTime.all(name) as Array<{ kind: OneTimeKind, n: number }>
      const s = q.getSigned.get(name) as SignedRow | undefined
      const n = (kind: OneTimeKind) => Number(counts.find(c => c.kind === kind)?.n ?? 0)
      return { oneTime: n('ec'), oneTimeKem: n('kem'), signedPrekeyId: s?.spk_id ?? undefined, lastResortId: s?.lr_id ?? undefined }
    },
    async claimPrekeys (username, opts) {
      open()
      return claim(canonical(username), opts?.oneTime !== false)
    },
    async getSealedAccess (username) {
      open()
      const row = q.getAccess.get(username) as { access_verifier: string | null, allow_strangers: number } | undefined
      return row === undefined ? undefined : { verifier: row.access_verifier, allowStrangers: row.allow_strangers !== 0 }
    },
    async setSealedAccess (username, access) {
      open()
      if (q.setAccess.run(access.verifier, access.allowStrangers ? 1 : 0, username).changes === 0) throw userUnknown()
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
