// The storage interfaces (docs/ARCHITECTURE.md §9). Roles receive stores; they never build one by
// name. Every method is async so embedded and external implementations are
// interchangeable; one contract suite per interface (test/storage/contract/) runs
// against every implementation.

/* ---------------------------------------------------------------- sessions -- */

/**
 * Relay circuit sessions: opaque serialized circuit state (keys, counters, neighbours)
 * keyed by a string id. Bounded (`maxEntries`) and expiring (`ttlMs`); the oldest
 * entries are evicted when full. Values are bytes so that an external store can
 * encrypt them (the Redis adapter never stores key material in the clear).
 */
export interface SessionStore {
  readonly kind: string
  get (id: string): Promise<Uint8Array | undefined>
  /** insert or replace; refreshes the TTL. `value` is copied before set() returns: the caller may reuse it at once */
  set (id: string, value: Uint8Array): Promise<void>
  /**
   * set() only when `id` holds no live value; false (and nothing written) when it does.
   * Atomic in a shared store: of several processes creating one id at once, one wins.
   */
  create (id: string, value: Uint8Array): Promise<boolean>
  /**
   * The value with its version: a number the store assigns on every write (set,
   * create, compareAndSet), unique across the whole store and increasing, so a
   * version never names two values, even of an id deleted and written again.
   */
  getVersioned (id: string): Promise<VersionedValue | undefined>
  /**
   * Writes `value` only when `id`'s current version is `expected` (0: only when
   * absent); returns the new version, or 0 and writes nothing when another write came
   * first (a stale copy written back is refused). Atomic in a shared store.
   */
  compareAndSet (id: string, value: Uint8Array, expected: number): Promise<number>
  delete (id: string): Promise<void>
  /** live entries (never more than maxEntries) */
  size (): Promise<number>
  close (): Promise<void>
}

export interface VersionedValue {
  value: Uint8Array
  version: number
}

export interface SessionStoreInit {
  maxEntries: number
  ttlMs: number
}

/* ------------------------------------------------------------------- users -- */

/** A user's public end-to-end keys, base64 of the raw 32-byte public keys. */
export interface UserKeys {
  /** X25519 public key, to encrypt DMs to this user */
  enc: string
  /** Ed25519 public key, to verify DMs signed by this user */
  sign: string
}

export interface UserRecord {
  /** the name as registered (lowercase: names are a-z 0-9 _ -) */
  username: string
  /** encoded scrypt hash: `scrypt$N$r$p$salt_b64$hash_b64` */
  passwordHash: string
  keys: UserKeys | null
  createdAt: number
}

/** One prekey as stored (PQXDH §3.2): base64 of the raw public key, its Ed25519 signature when signed. */
export interface StoredPrekey {
  /** u32, unique per user and kind */
  id: number
  key: string
  signature?: string
}

export type OneTimeKind = 'ec' | 'kem'

/** What a user publishes (docs/PROTOCOL.md §11.2); the service checks keys and signatures first. */
export interface PrekeyUpload {
  /** replaces the current signed X25519 prekey */
  signedPrekey?: StoredPrekey
  /** replaces the current last-resort ML-KEM-768 prekey */
  lastResortKem?: StoredPrekey
  /** appended: one-time X25519 prekeys (unsigned) */
  oneTime?: StoredPrekey[]
  /** appended: one-time ML-KEM-768 prekeys (signed) */
  oneTimeKem?: StoredPrekey[]
}

/** What one fetch hands out: each one-time prekey in it is gone from the store. */
export interface ClaimedPrekeys {
  signedPrekey: StoredPrekey
  /** a one-time ML-KEM prekey, else the last-resort one (`lastResort` true) */
  kemPrekey: StoredPrekey & { lastResort: boolean }
  oneTimePrekey?: StoredPrekey
}

/** Who may send a user sealed DMs (docs/PROTOCOL.md §12.3): never the access key itself. */
export interface SealedAccess {
  /** base64 SHA-256 of the user's delivery token, or null before the user set one */
  verifier: string | null
  /** whether senders without a delivery token (strangers, paying an anonymous token) may send; default true */
  allowStrangers: boolean
}

export interface UserStore {
  readonly kind: string
  /**
   * Throws MarshmelloError MM_ERR_USER_EXISTS (409) when the name is taken (case-insensitive).
   * `createdAt` defaults to now (`marshmello migrate` passes the original).
   */
  create (user: { username: string, passwordHash: string, keys: UserKeys | null, createdAt?: number }): Promise<UserRecord>
  /** case-insensitive */
  get (username: string): Promise<UserRecord | undefined>
  /** Throws MM_ERR_USER_UNKNOWN (404) when there is no such user. Drops every prekey (they were signed by the old keys). */
  setKeys (username: string, keys: UserKeys): Promise<void>
  /**
   * Stores a prekey upload in one transaction. Throws MM_ERR_USER_UNKNOWN for no such user and
   * MM_ERR_BAD_PREKEY when a one-time id is already stored for that kind.
   */
  addPrekeys (username: string, upload: PrekeyUpload): Promise<void>
  /** how many one-time prekeys of each kind are left, and the signed prekey's id (undefined: none) */
  prekeyCounts (username: string): Promise<{ oneTime: number, oneTimeKem: number, signedPrekeyId?: number, lastResortId?: number }>
  /**
   * Hands out a bundle: the signed prekey, one one-time ML-KEM prekey (else the last-resort
   * one) and one one-time X25519 prekey if any, deleting the one-time ones in the same
   * transaction, so two claims at once never get the same key (also across processes).
   * undefined when the user has no signed prekey or no ML-KEM prekey at all.
   */
  claimPrekeys (username: string, opts?: { oneTime?: boolean }): Promise<ClaimedPrekeys | undefined>
  /** the user's sealed-sender access (verifier null and strangers allowed until set); undefined for no such user */
  getSealedAccess (username: string): Promise<SealedAccess | undefined>
  /** Throws MM_ERR_USER_UNKNOWN (404) when there is no such user. */
  setSealedAccess (username: string, access: SealedAccess): Promise<void>
  /** logout: the token id stays revoked until `expiresAt` (ms since epoch) */
  revokeToken (jti: string, expiresAt: number): Promise<void>
  isTokenRevoked (jti: string): Promise<boolean>
  /** drops revocations whose token has expired anyway */
  purgeRevoked (now: number): Promise<void>
  count (): Promise<number>
  /** every user, for `marshmello migrate` (ordered by username) */
  all (): AsyncIterable<UserRecord>
  close (): Promise<void>
}

/* ---------------------------------------------------------------- messages -- */

export interface StoredMessage {
  /** server-assigned id; ids sort in arrival order and serve as cursors */
  id: string
  from: string
  /** set for a room message */
  room?: string
  /** set for a direct message (then `body` is ciphertext the server cannot read) */
  to?: string
  /** the sender's id for this message: (from, clientId) is unique (idempotent sends) */
  clientId: string
  body: string
  sentAt: number
  /** ms since epoch after which the message is gone; absent: kept */
  expiresAt?: number
}

export type NewMessage = Omit<StoredMessage, 'id'>

export interface MessageQuery {
  /** a room's messages */
  room?: string
  /** every DM sent to or by this user */
  dmUser?: string
  /** only messages with id > after */
  after?: string
  /**
   * only messages with id < before: the newest `limit` of them, returned oldest first
   * (older history, paged backwards); not with `after` or `newest`
   */
  before?: string
  /** the newest `limit` messages instead of the oldest (still returned oldest first); not with `after` */
  newest?: boolean
  limit: number
}

/** One room as the room list shows it: that it exists, how much it holds, when it was last written to. */
export interface RoomSummary {
  name: string
  /** its messages that have not expired */
  messages: number
  /** the newest message's id (ids sort in arrival order) */
  lastId: string
  /** the newest message's sentAt (ms since epoch) */
  lastAt: number
}

export interface RoomQuery {
  /** only rooms whose name sorts after this one (the previous page's last name) */
  after?: string
  limit: number
}

export interface MessageStore {
  readonly kind: string
  /**
   * Stores once per (from, clientId): a retried send returns the first copy, created=false.
   * `opts.id` keeps a given id instead of a new one (`marshmello migrate`).
   */
  put (msg: NewMessage, opts?: { id?: string }): Promise<{ message: StoredMessage, created: boolean }>
  /** ascending by id, at most `limit`, excluding expired messages */
  list (q: MessageQuery): Promise<StoredMessage[]>
  count (): Promise<number>
  /**
   * The rooms that hold at least one message that has not expired, by name (ascending,
   * bytewise), at most `limit`, after `q.after`. Names and counts only: never who wrote.
   */
  rooms (q: RoomQuery): Promise<RoomSummary[]>
  /** removes messages whose expiresAt <= now; returns how many */
  deleteExpired (now: number): Promise<number>
  /** removes the DMs among `ids` that were sent to `to` (the recipient acknowledged them); returns how many */
  deleteDms (to: string, ids: string[]): Promise<number>
  /** called after any process sharing this store stores a new message */
  onMessage (listener: (m: StoredMessage) => void): () => void
  all (): AsyncIterable<StoredMessage>
  close (): Promise<void>
}
