// The shared message store on PostgreSQL (for deployments without MongoDB): a pg
// Pool, parameterised queries, numbered migrations under an advisory lock, one index
// per read path, unique (from, client_id), TTL by expires_at + deleteExpired. onMessage
// crosses processes by LISTEN/NOTIFY: put() notifies the new id on a per-schema
// channel; every listening process fetches that row and emits it. A dedicated
// client holds the LISTEN and reconnects by itself when the database goes away.

import pg from 'pg'
import { randomHex } from '../../onion/crypto/random.js'
import type { MessageStore, NewMessage, StoredMessage } from '../types.js'
import { storeUnavailable } from '../errors.js'
import { openPgStore, type PgStoreInit } from '../postgres.js'
import { messageId } from '../ids.js'
import { Listeners } from './listeners.js'
import { checkNewMessage, checkQuery, checkRoomQuery, toMessage } from './fields.js'

export interface PostgresMessageStoreInit extends PgStoreInit {
  /** first delay before the LISTEN client reconnects (doubles up to 5 s); default 250 ms */
  listenRetryMs?: number
}

/** Each entry runs once, in order; `s` is the quoted schema name. */
const MIGRATIONS: Array<(s: string) => string> = [
  s => `CREATE TABLE ${s}.messages (
      id TEXT COLLATE "C" PRIMARY KEY,
      sender TEXT NOT NULL,
      room TEXT,
      recipient TEXT,
      client_id TEXT NOT NULL,
      body TEXT NOT NULL,
      sent_at BIGINT NOT NULL,
      expires_at BIGINT,
      CHECK ((room IS NULL) <> (recipient IS NULL))
    );
    CREATE UNIQUE INDEX messages_sender_client_id ON ${s}.messages (sender, client_id);
    CREATE INDEX messages_room_id ON ${s}.messages (room, id) WHERE room IS NOT NULL;
    CREATE INDEX messages_recipient_id ON ${s}.messages (recipient, id) WHERE recipient IS NOT NULL;
    CREATE INDEX messages_sender_dm_id ON ${s}.messages (sender, id) WHERE recipient IS NOT NULL;
    CREATE INDEX messages_expires_at ON ${s}.messages (expires_at) WHERE expires_at IS NOT NULL;`
]

interface Row { id: string, sender: string, room: string | null, recipient: string | null, client_id: string, body: string, sent_at: string, expires_at: string | null }

const COLS = 'id, sender, room, recipient, client_id, body, sent_at, expires_at'
const PAGE = 500

const fromRow = (r: Row): StoredMessage => toMessage({
  id: r.id, from: r.sender, room: r.room, to: r.recipient, clientId: r.client_id, body: r.body,
  sentAt: Number(r.sent_at), expiresAt: r.expires_at === null ? null : Number(r.expires_at)
})

export interface PostgresMessageStore extends MessageStore {
  readonly schema: string
}

export async function postgresMessageStore (init: PostgresMessageStoreInit): Promise<PostgresMessageStore> {
  // the version table and lock name predate the shared helper: existing databases keep them
  const db = await openPgStore('messages', init, { table: 'message_migrations', lock: 'marshmello:migrate:{schema}:messages', steps: MIGRATIONS })
  const { schema, s, query, clientConfig } = db
  // one NOTIFY channel per schema, so test runs and deployments sharing a database stay apart
  const channel = `mm_messages_${schema}`.slice(0, 63)
  // NOTIFY payload `<instance> <id>`: this store emits its own puts at once and skips their echo
  const instance = randomHex(6)
  let closed = false

  /* onMessage: this process's own puts are emitted at once; other processes' arrive
   * on a dedicated LISTEN client, opened while anyone listens. Each NOTIFY carries
   * one id; the row is fetched and emitted (the payload limit is 8000 bytes
   * and a row may be larger). Notifications sent while the LISTEN connection is down
   * are lost: waiters time out and re-read, so a long-poll is late, never wrong. */
  const listeners = new Listeners()
  let listener: pg.Client | undefined
  let connecting: Promise<void> | undefined
  let retryTimer: NodeJS.Timeout | undefined
  let retryMs = init.listenRetryMs ?? 250
  const fetchAndEmit = async (id: string) => {
    try {
      const { rows } = await query<Row>(`SELECT ${COLS} FROM ${s}.messages WHERE id = $1`, [id])
      if (rows.length > 0 && listeners.size > 0) listeners.emit(fromRow(rows[0]))
    } catch { /* the store went down between NOTIFY and fetch: the long-poll re-reads on timeout */ }
  }
  const dropListener = () => {
    const c = listener
    listener = undefined
    if (c !== undefined) { c.removeAllListeners('notification'); c.on('error', () => {}); c.end().catch(() => {}) }
  }
  const scheduleRetry = () => {
    if (closed || listeners.size === 0 || retryTimer !== undefined) return
    retryTimer = setTimeout(() => { retryTimer = undefined; void startListening() }, retryMs)
    retryTimer.unref()
    retryMs = Math.min(retryMs * 2, 5_000)
  }
  const startListening = async (): Promise<void> => {
    if (closed || listeners.size === 0 || listener !== undefined) return
    if (connecting !== undefined) return await connecting
    connecting = (async () => {
      const c = new pg.Client(clientConfig)
      c.on('error', () => { if (listener === c) { dropListener(); scheduleRetry() } })
      c.on('end', () => { if (listener === c) { listener = undefined; scheduleRetry() } })
      c.on('notification', (n) => {
        const [from, id] = (n.payload ?? '').split(' ')
        if (n.channel === channel && from !== instance && id !== undefined) void fetchAndEmit(id)
      })
      try {
        await c.connect()
        await c.query(`LISTEN "${channel}"`)
        if (closed || listeners.size === 0) { await c.end().catch(() => {}); return }
        listener = c
        retryMs = init.listenRetryMs ?? 250
      } catch {
        c.on('error', () => {})
        await c.end().catch(() => {})
        scheduleRetry()
      }
    })()
    try { await connecting } finally { connecting = undefined }
  }
  const syncListening = (count: number) => {
    if (count > 0) void startListening()
    else { clearTimeout(retryTimer); retryTimer = undefined; dropListener() }
  }

  return {
    kind: 'postgres',
    schema,
    async put (msg: NewMessage, opts) {
      checkNewMessage(msg)
      const id = opts?.id ?? messageId(Date.now())
      // one statement: insert, or return the first copy (ON CONFLICT cannot RETURN the existing row)
      const { rows } = await query<Row & { created: boolean }>(
        `WITH ins AS (
           INSERT INTO ${s}.messages (${COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (sender, client_id) DO NOTHING
           RETURNING ${COLS}
         )
         SELECT ${COLS}, true AS created FROM ins
         UNION ALL
         SELECT ${COLS}, false AS created FROM ${s}.messages WHERE sender = $2 AND client_id = $5 AND NOT EXISTS (SELECT 1 FROM ins)`,
        [id, msg.from, msg.room ?? null, msg.to ?? null, msg.clientId, msg.body, msg.sentAt, msg.expiresAt ?? null])
      if (rows.length === 0) {
        // a concurrent put of the same (from, clientId) is not committed yet: its row is
        // invisible to this snapshot; the unique index made us wait, so read again
        const again = await query<Row>(`SELECT ${COLS} FROM ${s}.messages WHERE sender = $1 AND client_id = $2`, [msg.from, msg.clientId])
        if (again.rows.length === 0) throw storeUnavailable('messages', init.url, new Error('conflicting insert vanished'), 'lost a write race')
        return { message: fromRow(again.rows[0]), created: false }
      }
      const message = fromRow(rows[0])
      if (rows[0].created) {
        listeners.emit(message)
        // the other processes hear it through their LISTEN client; a failed NOTIFY only
        // delays their long-polls to the timeout, the message itself is stored
        await query('SELECT pg_notify($1, $2)', [channel, `${instance} ${message.id}`]).catch(() => {})
      }
      return { message, created: rows[0].created }
    },
    async list (q) {
      checkQuery(q)
      const now = Date.now()
      const params: unknown[] = []
      const p = (v: unknown) => { params.push(v); return `$${params.length}` }
      let where: string
      if (q.room !== undefined) {
        where = `room = ${p(q.room)}`
      } else {
        const u = p(q.dmUser)
        where = `(recipient = ${u} OR (sender = ${u} AND recipient IS NOT NULL))`
      }
      if (q.after !== undefined) where += ` AND id > ${p(q.after)}`
      if (q.before !== undefined) where += ` AND id < ${p(q.before)}`
      where += ` AND (expires_at IS NULL OR expires_at > ${p(now)})`
      const newest = q.newest === true || q.before !== undefined
      const { rows } = await query<Row>(`SELECT ${COLS} FROM ${s}.messages WHERE ${where} ORDER BY id ${newest ? 'DESC' : ''} LIMIT ${p(q.limit)}`, params)
      if (newest) rows.reverse()
      return rows.map(fromRow)
    },
    async count () {
      return (await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${s}.messages`, [])).rows[0].n
    },
    async rooms (q) {
      checkRoomQuery(q)
      // one pass over the room index; names compare bytewise (COLLATE "C") like the other stores
      const params: unknown[] = [Date.now(), q.limit]
      const after = q.after !== undefined ? ` AND room COLLATE "C" > $${params.push(q.after)}` : ''
      const { rows } = await query<{ room: string, n: number, last_id: string, last_at: string }>(
        `SELECT room, count(*)::int AS n, max(id) AS last_id,
                (array_agg(sent_at ORDER BY id DESC))[1] AS last_at
           FROM ${s}.messages
          WHERE room IS NOT NULL AND (expires_at IS NULL OR expires_at > $1)${after}
          GROUP BY room ORDER BY room COLLATE "C" LIMIT $2`, params)
      return rows.map((r) => ({ name: r.room, messages: r.n, lastId: r.last_id, lastAt: Number(r.last_at) }))
    },
    async deleteExpired (now) {
      return (await query(`DELETE FROM ${s}.messages WHERE expires_at <= $1`, [now])).rowCount ?? 0
    },
    async deleteDms (to, ids) {
      if (ids.length === 0) return 0
      return (await query(`DELETE FROM ${s}.messages WHERE recipient = $1 AND id = ANY($2::text[])`, [to, ids])).rowCount ?? 0
    },
    onMessage (l) {
      return listeners.add(l, syncListening)
    },
    async * all () {
      let last = ''
      for (;;) {
        const { rows } = await query<Row>(`SELECT ${COLS} FROM ${s}.messages WHERE id > $1 ORDER BY id LIMIT $2`, [last, PAGE])
        for (const r of rows) yield fromRow(r)
        if (rows.length < PAGE) return
        last = rows[rows.length - 1].id
      }
    },
    async close () {
      if (closed) return
      closed = true
      listeners.clear()
      clearTimeout(retryTimer)
      await connecting?.catch(() => {})
      dropListener()
      await db.close()
    }
  }
}
