// The embedded message store: one nedb-promises file. Each insert is appended to the
// file (through one kept-open descriptor, see keepAppendFileOpen) before the promise resolves, so an acknowledged put survives
// kill -9 (not power loss: nedb does not fsync appends; compaction does fsync).
// onMessage fires in this process only: several server processes should share MongoDB.

import { appendFileSync, closeSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import Datastore from 'nedb-promises'
// nedb's own line format (dates as $$date, key checks), for the append path below
import model from '@seald-io/nedb/lib/model.js'
import type { MessageStore, NewMessage, RoomSummary, StoredMessage } from '../types.js'
import { storeClosed, storeUnavailable } from '../errors.js'
import { messageId } from '../ids.js'
import { Listeners } from './listeners.js'
import { checkNewMessage, checkQuery, checkRoomQuery, toMessage } from './fields.js'

export interface NedbMessageStoreInit {
  /** file path; created with its directory when missing */
  path: string
  /** how often the append-only file is rewritten compactly; default 10 minutes */
  compactIntervalMs?: number
  /** clock for ids and expiry, for tests; default Date.now */
  now?: () => number
}

interface Doc {
  _id: string
  /** from + NUL + clientId, unique: nedb has no compound unique index */
  key: string
  from: string
  room?: string
  to?: string
  clientId: string
  body: string
  sentAt: number
  expiresAt?: number
}

const PAGE = 500

const fromDoc = (d: Doc): StoredMessage => toMessage({ ...d, id: d._id })
const notExpired = (now: number) => ({ $not: { expiresAt: { $lte: now } } })

export async function nedbMessageStore (init: NedbMessageStoreInit): Promise<MessageStore> {
  const url = `nedb:${init.path}`
  const now = init.now ?? Date.now
  const db = Datastore.create({ filename: init.path, autoload: false })
  try {
    mkdirSync(dirname(init.path), { recursive: true })
    await db.load()
    await db.ensureIndex({ fieldName: 'key', unique: true })
    await db.ensureIndex({ fieldName: 'room', sparse: true })
    await db.ensureIndex({ fieldName: 'to', sparse: true })
    await db.ensureIndex({ fieldName: 'from' })
  } catch (err) {
    throw storeUnavailable('messages', url, err, 'cannot be opened')
  }

  const appends = keepAppendFileOpen(db as unknown as { __original: NedbInternals }, init.path)

  let compacting: Promise<void> = Promise.resolve()
  const compact = setInterval(() => {
    // through the proxy to nedb's own compactDatafileAsync, queued behind pending writes
    compacting = (db as unknown as { compactDatafileAsync (): Promise<void> }).compactDatafileAsync().catch(() => {})
  }, init.compactIntervalMs ?? 10 * 60_000)
  compact.unref()

  const rooms = roomSummaries(() => (db as unknown as { __original: { getAllData (): Doc[] } }).__original.getAllData())
  const listeners = new Listeners()
  let closed = false
  const open = () => { if (closed) throw storeClosed('messages') }

  const byKey = async (key: string) => await db.findOne<Doc>({ key }) as Doc | null

  // Group commit: inserts arriving in the same tick are appended to the file in one
  // write (one write per insert call was the largest cost of a busy server in profiles). Each put still resolves only after its document is on
  // disk. A batch that fails (a racing duplicate key) is retried one document at a time,
  // so each put gets its own answer.
  let batch: { doc: Doc, resolve: () => void, reject: (e: unknown) => void }[] = []
  const flush = async () => {
    const items = batch
    batch = []
    try {
      await db.insert(items.map((i) => i.doc))
      items.forEach((i) => i.resolve())
    } catch {
      for (const i of items) await db.insert(i.doc).then(() => i.resolve(), i.reject)
    }
  }
  const insert = (doc: Doc) => new Promise<void>((resolve, reject) => {
    if (batch.length === 0) setImmediate(() => { void flush() })
    batch.push({ doc, resolve, reject })
  })

  return {
    kind: 'nedb',
    async put (msg: NewMessage, opts) {
      open()
      checkNewMessage(msg)
      const key = msg.from + '\u0000' + msg.clientId
      // no lookup first: the unique index on `key` refuses a repeat, found below (repeats
      // are rare retries; a lookup per put was a tenth of the store's cost)
      const doc: Doc = { _id: opts?.id ?? messageId(now()), key, from: msg.from, clientId: msg.clientId, body: msg.body, sentAt: msg.sentAt }
      if (msg.room !== undefined) doc.room = msg.room
      if (msg.to !== undefined) doc.to = msg.to
      if (msg.expiresAt !== undefined) doc.expiresAt = msg.expiresAt
      try {
        await insert(doc)
      } catch (err) {
        // an earlier or concurrent put of the same (from, clientId)
        const winner = (err as { errorType?: string }).errorType === 'uniqueViolated' ? await byKey(key) : null
        if (winner !== null) return { message: fromDoc(winner), created: false }
        throw err
      }
      rooms.added(doc)
      const message = fromDoc(doc)
      listeners.emit(message)
      return { message, created: true }
    },
    async list (q) {
      open()
      checkQuery(q)
      const t = now()
      // With a cursor, the _id index yields only the documents after it: nedb takes its
      // candidates from the first indexed equality it sees, so the room (or to/from)
      // condition goes inside $and, where it only filters. A long-poll read after the
      // latest id then costs the few newest documents, not every message of the room.
      // A `before` read keeps the room (or to/from) equality where nedb sees it: older
      // history is most of a room, so the room's index is the smaller candidate set.
      const newest = q.newest === true || q.before !== undefined
      const page = async (where: object) => {
        const query = q.after !== undefined
          ? { $and: [where], _id: { $gt: q.after }, ...notExpired(t) }
          : { ...where, ...(q.before !== undefined ? { _id: { $lt: q.before } } : {}), ...notExpired(t) }
        if (newest) return (await db.find<Doc>(query).sort({ _id: -1 }).limit(q.limit) as Doc[]).reverse()
        return await db.find<Doc>(query).sort({ _id: 1 }).limit(q.limit) as Doc[]
      }
      let docs: Doc[]
      if (q.room !== undefined) {
        docs = await page({ room: q.room })
      } else {
        // two indexed queries (to, from) instead of one $or that nedb would scan
        const [to, from] = await Promise.all([page({ to: q.dmUser }), page({ from: q.dmUser, to: { $exists: true } })])
        const seen = new Map<string, Doc>()
        for (const d of [...to, ...from]) seen.set(d._id, d)
        const merged = [...seen.values()].sort((a, b) => a._id < b._id ? -1 : a._id > b._id ? 1 : 0)
        docs = newest ? merged.slice(-q.limit) : merged.slice(0, q.limit)
      }
      return docs.map(fromDoc)
    },
    async count () {
      open()
      return await db.count({})
    },
    async rooms (q) {
      open()
      checkRoomQuery(q)
      return rooms.list(now(), q.after, q.limit)
    },
    async deleteExpired (at) {
      open()
      const removed = await db.remove({ expiresAt: { $lte: at } }, { multi: true })
      if (removed > 0) rooms.forget()
      return removed
    },
    async deleteDms (to, ids) {
      open()
      if (ids.length === 0) return 0
      return await db.remove({ _id: { $in: ids }, to }, { multi: true })
    },
    onMessage (listener) {
      return listeners.add(listener)
    },
    async * all () {
      let last = ''
      for (;;) {
        open()
        const docs = await db.find<Doc>({ _id: { $gt: last } }).sort({ _id: 1 }).limit(PAGE) as Doc[]
        for (const d of docs) yield fromDoc(d)
        if (docs.length < PAGE) return
        last = docs[docs.length - 1]._id
      }
    },
    async close () {
      if (closed) return
      closed = true
      clearInterval(compact)
      listeners.clear()
      await compacting
      appends.close()
    }
  }
}

/**
 * The room list from memory (nedb holds every document in memory anyway): a summary
 * per room, built in one synchronous pass over the documents the first time it is
 * asked for, then kept up by each put. A message expiring, or a sweep deleting some,
 * makes the next list rebuild it, so counts never include an expired message.
 * Synchronous throughout, so no put can slip between a rebuild's read and its use.
 */
function roomSummaries (allDocs: () => Doc[]) {
  let byName: Map<string, RoomSummary> | null = null
  let nextExpiry = Infinity
  const add = (m: Map<string, RoomSummary>, d: Doc) => {
    const r = m.get(d.room!)
    if (r === undefined) m.set(d.room!, { name: d.room!, messages: 1, lastId: d._id, lastAt: d.sentAt })
    else {
      r.messages++
      if (d._id > r.lastId) { r.lastId = d._id; r.lastAt = d.sentAt }
    }
    if (d.expiresAt !== undefined && d.expiresAt < nextExpiry) nextExpiry = d.expiresAt
  }
  const rebuild = (t: number) => {
    const m = new Map<string, RoomSummary>()
    nextExpiry = Infinity
    for (const d of allDocs()) if (d.room !== undefined && (d.expiresAt === undefined || d.expiresAt > t)) add(m, d)
    byName = m
    return m
  }
  return {
    added (d: Doc) { if (byName !== null && d.room !== undefined) add(byName, d) },
    forget () { byName = null },
    list (t: number, after: string | undefined, limit: number): RoomSummary[] {
      const m = byName === null || t >= nextExpiry ? rebuild(t) : byName
      const names = [...m.keys()].filter((n) => after === undefined || n > after).sort()
      return names.slice(0, limit).map((n) => ({ ...m.get(n)! }))
    }
  }
}

/** the parts of nedb 4's Datastore and Persistence the append path below replaces */
interface NedbInternals {
  persistence: {
    persistNewStateAsync (docs: object[]): Promise<void>
    persistCachedDatabaseAsync (): Promise<void>
    afterSerialization (s: string): string | Promise<string>
    modes: { fileMode: number }
  }
}

/**
 * nedb appends every write with fs.appendFile, which opens and closes the file each
 * time: in profiles of a busy server the open alone was 6.5 % of its CPU. This keeps
 * one append descriptor open instead and writes exactly the lines nedb would, with
 * writeSync: a page-cache append of one group commit takes ~2 µs of CPU where an async
 * write's round trip through the thread pool took ~30 µs here (measured, 2-core VM);
 * neither fsyncs, so durability is unchanged. nedb runs writes and compaction one at a
 * time (its executor), and compaction replaces the file by rename, so the descriptor
 * is closed before compacting and reopened lazily after. Checked against
 * @seald-io/nedb 4.1 (pinned in package.json).
 */
function keepAppendFileOpen (db: { __original: NedbInternals }, path: string): { close (): void } {
  const p = db.__original.persistence
  let fd: number | null = null
  let closed = false
  const release = () => {
    if (fd !== null) closeSync(fd)
    fd = null
  }
  p.persistNewStateAsync = async (docs) => {
    let lines = ''
    for (const doc of docs) lines += await p.afterSerialization(model.serialize(doc)) + '\n'
    if (lines.length === 0) return
    const bytes = Buffer.from(lines, 'utf8')
    // a write still queued when the store closed is appended without keeping a descriptor
    if (closed) return appendFileSync(path, bytes, { mode: p.modes.fileMode })
    fd ??= openSync(path, 'a', p.modes.fileMode)
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off)
  }
  const compact = p.persistCachedDatabaseAsync.bind(p)
  p.persistCachedDatabaseAsync = async () => {
    release()
    await compact()
  }
  return { close: () => { closed = true; release() } }
}
