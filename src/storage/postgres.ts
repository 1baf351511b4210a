// What the PostgreSQL stores share: a pg Pool for one schema, numbered migrations
// applied once under an advisory lock (several server processes may start at once),
// and a query function that turns a database gone away into MM_ERR_STORE_UNAVAILABLE
// (503) while errors about the query itself (constraint violations…) pass through.

import pg from 'pg'
import { isMarshmelloError } from '../errors.js'
import { storeClosed, storeConfigError, storeUnavailable, type StoreRole } from './errors.js'

export interface PgStoreInit {
  url: string
  /** schema for the tables, created when missing; default `public` */
  schema?: string
  /** most connections held open; default 10 */
  poolSize?: number
  /** give up connecting after this long; default 5000 ms */
  connectTimeoutMs?: number
}

export interface PgMigrations {
  /** table recording the versions applied, in the schema */
  table: string
  /** advisory lock name; `{schema}` is replaced by the schema name */
  lock: string
  /** each entry runs once, in order; `s` is the quoted schema name */
  steps: Array<(s: string) => string>
}

export interface PgStore {
  pool: pg.Pool
  schema: string
  /** the schema name quoted for SQL */
  s: string
  /** what a single pg.Client needs to connect like the pool (LISTEN) */
  clientConfig: pg.ClientConfig
  query: <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => Promise<pg.QueryResult<R>>
  readonly closed: boolean
  /** refuses further queries, then ends the pool (idempotent) */
  close: () => Promise<void>
}

/** SQLSTATE classes that mean the server, not the query, is the problem. */
const isServerDown = (code: string) => /^(08|53|57P)/.test(code)

async function migrate (pool: pg.Pool, schema: string, m: PgMigrations): Promise<void> {
  const s = `"${schema}"`
  const c = await pool.connect()
  try {
    await c.query('BEGIN')
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [m.lock.replace('{schema}', schema)])
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
    await c.query(`CREATE TABLE IF NOT EXISTS ${s}.${m.table} (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
    const done = new Set((await c.query<{ version: number }>(`SELECT version FROM ${s}.${m.table}`)).rows.map(r => r.version))
    for (let i = 0; i < m.steps.length; i++) {
      if (done.has(i + 1)) continue
      await c.query(m.steps[i](s))
      await c.query(`INSERT INTO ${s}.${m.table} (version, applied_at) VALUES ($1, $2)`, [i + 1, Date.now()])
    }
    await c.query('COMMIT')
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    c.release()
  }
}

/** Opens the pool and migrates; throws MM_ERR_STORE_CONFIG or MM_ERR_STORE_UNAVAILABLE. */
export async function openPgStore (role: StoreRole, init: PgStoreInit, migrations: PgMigrations): Promise<PgStore> {
  const schema = init.schema ?? 'public'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw storeConfigError(`expected a schema name of a-z 0-9 _ (at most 63), got ${JSON.stringify(schema)}`)
  const clientConfig: pg.ClientConfig = { connectionString: init.url, connectionTimeoutMillis: init.connectTimeoutMs ?? 5_000 }
  const pool = new pg.Pool({ ...clientConfig, max: init.poolSize ?? 10, query_timeout: 10_000 })
  // an idle client that loses its connection: the pool drops it; the next query reconnects
  pool.on('error', () => {})
  try {
    await migrate(pool, schema, migrations)
  } catch (err) {
    await pool.end().catch(() => {})
    throw storeUnavailable(role, init.url, err)
  }
  let closed = false
  return {
    pool,
    schema,
    s: `"${schema}"`,
    clientConfig,
    get closed () { return closed },
    async query<R extends pg.QueryResultRow> (sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
      if (closed) throw storeClosed(role)
      try {
        return await pool.query<R>(sql, params)
      } catch (err) {
        const code = (err as { code?: unknown }).code
        if (isMarshmelloError(err) || (typeof code === 'string' && code.length === 5 && !isServerDown(code))) throw err
        throw storeUnavailable(role, init.url, err, 'is unavailable')
      }
    },
    async close () {
      if (closed) return
      closed = true
      await pool.end()
    },
  }
}
