// The shared message store: MongoDB through the official driver, so several server
// processes share messages. Indexes serve each read path; a TTL index on expiresAt
// (a Date) lets MongoDB drop expired messages itself. onMessage follows a change
// stream, or polls when change streams are unavailable (see startWatching).

import { MongoClient, type ChangeStream, type ChangeStreamDocument, type Collection, type Filter } from 'mongodb'
import type { MessageStore, NewMessage, StoredMessage } from '../types.js'
import { isMarshmelloError } from '../../errors.js'
import { storeClosed, storeUnavailable } from '../errors.js'
import { idFloor, messageId } from '../ids.js'
import { Listeners } from './listeners.js'
import { checkNewMessage, checkQuery, checkRoomQuery, toMessage } from './fields.js'

export interface MongoMessageStoreInit {
  url: string
  /** default: the database named in the URL, else `marshmello` */
  database?: string
  /** default `messages` */
  collection?: string
  /** give up selecting a server after this long, at open and per request; default 5000 ms */
  connectTimeoutMs?: number
  /** polling period when change streams are unavailable; default 500 ms */
  pollIntervalMs?: number
  /** how far back (by id time) each poll looks for late-visible inserts; default 5000 ms */
  pollLookbackMs?: number
}

export interface MongoMessageStore extends MessageStore {
  readonly databaseName: string
  readonly collectionName: string
}

interface Doc {
  _id: string
  from: string
  room?: string
  to?: string
  clientId: string
  body: string
  sentAt: number
  expiresAt?: Date
}

const fromDoc = (d: Doc): StoredMessage => toMessage({ ...d, id: d._id })
const notExpired = (now: number): Filter<Doc> => ({ expiresAt: { $not: { $lte: new Date(now) } } })
const DOWN = /Network|ServerSelection|NotConnected|TopologyClosed|Timeout|PoolCleared/

function databaseIn (url: string): string | undefined {
  const m = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]+)/.exec(url)
  return m?.[1] !== undefined ? decodeURIComponent(m[1]) : undefined
}

export async function mongoMessageStore (init: MongoMessageStoreInit): Promise<MongoMessageStore> {
  const timeout = init.connectTimeoutMs ?? 5_000
  const client = new MongoClient(init.url, { serverSelectionTimeoutMS: timeout, connectTimeoutMS: timeout })
  const collectionName = init.collection ?? 'messages'
  const databaseName = init.database ?? databaseIn(init.url) ?? 'marshmello'
  let coll: Collection<Doc>
  try {
    await client.connect()
    const db = client.db(databaseName)
    await db.command({ ping: 1 })
    coll = db.collection<Doc>(collectionName)
    await coll.createIndexes([
      { key: { room: 1, _id: 1 }, name: 'room_id' },
      { key: { to: 1, _id: 1 }, name: 'to_id' },
      { key: { from: 1, _id: 1 }, name: 'from_id' },
      { key: { from: 1, clientId: 1 }, name: 'from_clientId', unique: true },
      { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 }
    ])
  } catch (err) {
    await client.close().catch(() => {})
    throw storeUnavailable('messages', init.url, err)
  }

  let closed = false
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) throw storeClosed('messages')
    try {
      return await fn()
    } catch (err) {
      if (isMarshmelloError(err) || !DOWN.test((err as Error)?.name ?? '')) throw err
      throw storeUnavailable('messages', init.url, err, 'is unavailable')
    }
  }

  /* onMessage: a change stream when the deployment has them (replica sets, sharded
   * clusters), opened here at open so no insert slips between a subscription and the
   * stream's start. A standalone mongod refuses change streams: then, and if the
   * stream fails for good later, we fall back to polling every pollIntervalMs, only
   * while someone listens. Ids sort only roughly across processes (clock skew) and
   * an insert with a smaller id can become visible after one with a larger id (two
   * puts in flight), so each poll re-reads the last `pollLookbackMs` of ids and
   * skips those already emitted, instead of reading strictly after the last seen.
   * Polling sees other processes' messages up to one period late; a message whose
   * id lags by more than the lookback (a clock far behind) is not announced, only
   * found by the next read. */
  const listeners = new Listeners()
  let stream: ChangeStream<Doc, ChangeStreamDocument<Doc>> | undefined
  let pollTimer: NodeJS.Timeout | undefined
  let polling = false
  let pollStart = 0
  const lookbackMs = init.pollLookbackMs ?? 5_000
  /** ids emitted by polling, with when they were seen, pruned after the lookback */
  const emitted = new Map<string, number>()
  const pollOnce = async () => {
    if (polling || closed) return
    polling = true
    try {
      const now = Date.now()
      for (const [id, at] of emitted) if (at < now - 2 * lookbackMs) emitted.delete(id)
      const since = idFloor(Math.max(pollStart, now - lookbackMs))
      for await (const d of coll.find({ _id: { $gte: since } }).sort({ _id: 1 })) {
        if (emitted.has(d._id)) continue
        emitted.set(d._id, now)
        listeners.emit(fromDoc(d))
      }
    } catch { /* the store is down: the next tick retries */ } finally { polling = false }
  }
  const syncPolling = () => {
    if (stream !== undefined || closed) return
    if (listeners.size > 0 && pollTimer === undefined) {
      pollStart = Date.now()
      emitted.clear()
      pollTimer = setInterval(() => { void pollOnce() }, init.pollIntervalMs ?? 500)
      pollTimer.unref()
    } else if (listeners.size === 0 && pollTimer !== undefined) {
      clearInterval(pollTimer)
      pollTimer = undefined
    }
  }
  const pump = async (s: ChangeStream<Doc, ChangeStreamDocument<Doc>>) => {
    try {
      while (!closed) {
        const ev = await s.next()
        if (ev.operationType === 'insert') listeners.emit(fromDoc(ev.fullDocument))
      }
    } catch {
      // the driver already resumed what it could: this error is final for the stream
      if (closed) return
      stream = undefined
      await s.close().catch(() => {})
      syncPolling()
    }
  }
  try {
    const s = coll.watch<Doc, ChangeStreamDocument<Doc>>([{ $match: { operationType: 'insert' } }])
    // runs the aggregate: throws at once on a standalone server; on a replica set it
    // may wait up to the server's maxAwaitTimeMS (1 s) for a first event
    const first = await s.tryNext()
    stream = s
    if (first?.operationType === 'insert') listeners.emit(fromDoc(first.fullDocument))
    void pump(s)
  } catch {
    stream = undefined
  }

  return {
    kind: 'mongodb',
    databaseName,
    collectionName,
    async put (msg: NewMessage, opts) {
      checkNewMessage(msg)
      const doc: Doc = { _id: opts?.id ?? messageId(Date.now()), from: msg.from, clientId: msg.clientId, body: msg.body, sentAt: msg.sentAt }
      if (msg.room !== undefined) doc.room = msg.room
      if (msg.to !== undefined) doc.to = msg.to
      if (msg.expiresAt !== undefined) doc.expiresAt = new Date(msg.expiresAt)
      return await run(async () => {
        try {
          await coll.insertOne(doc)
          return { message: fromDoc(doc), created: true }
        } catch (err) {
          if ((err as { code?: number }).code !== 11000) throw err
          const first = await coll.findOne({ from: msg.from, clientId: msg.clientId })
          if (first === null) throw err
          return { message: fromDoc(first), created: false }
        }
      })
    },
    async list (q) {
      checkQuery(q)
      const filter: Filter<Doc> = {
        ...(q.room !== undefined ? { room: q.room } : { $or: [{ to: q.dmUser }, { from: q.dmUser, to: { $exists: true } }] }),
        ...(q.after !== undefined ? { _id: { $gt: q.after } } : q.before !== undefined ? { _id: { $lt: q.before } } : {}),
        ...notExpired(Date.now())
      }
      const newest = q.newest === true || q.before !== undefined
      const docs = await run(async () => await coll.find(filter).sort({ _id: newest ? -1 : 1 }).limit(q.limit).toArray())
      if (newest) docs.reverse()
      return docs.map(fromDoc)
    },
    async count () {
      return await run(async () => await coll.countDocuments({}))
    },
    async rooms (q) {
      checkRoomQuery(q)
      // the room_id index in order: each room's group ends with its newest message
      const match: Filter<Doc> = { room: q.after !== undefined ? { $gt: q.after } : { $exists: true }, ...notExpired(Date.now()) }
      const rows = await run(async () => await coll.aggregate<{ _id: string, n: number, lastId: string, lastAt: number }>([
        { $match: match },
        { $sort: { room: 1, _id: 1 } },
        { $group: { _id: '$room', n: { $sum: 1 }, lastId: { $last: '$_id' }, lastAt: { $last: '$sentAt' } } },
        { $sort: { _id: 1 } },
        { $limit: q.limit }
      ]).toArray())
      return rows.map((r) => ({ name: r._id, messages: r.n, lastId: r.lastId, lastAt: Number(r.lastAt) }))
    },
    async deleteExpired (now) {
      return await run(async () => (await coll.deleteMany({ expiresAt: { $lte: new Date(now) } })).deletedCount)
    },
    async deleteDms (to, ids) {
      if (ids.length === 0) return 0
      return await run(async () => (await coll.deleteMany({ _id: { $in: ids }, to })).deletedCount)
    },
    onMessage (listener) {
      return listeners.add(listener, syncPolling)
    },
    async * all () {
      let last = ''
      for (;;) {
        const docs = await run(async () => await coll.find({ _id: { $gt: last } }).sort({ _id: 1 }).limit(500).toArray())
        for (const d of docs) yield fromDoc(d)
        if (docs.length < 500) return
        last = docs[docs.length - 1]._id
      }
    },
    async close () {
      if (closed) return
      closed = true
      listeners.clear()
      if (pollTimer !== undefined) clearInterval(pollTimer)
      await stream?.close().catch(() => {})
      await client.close()
    }
  }
}
