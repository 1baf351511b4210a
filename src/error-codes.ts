// The error registry: every MM_ERR_* code with its one kind, the HTTP status a handler
// answers with, and when it is thrown (fastify's lib/errors.js habit: one table, call
// sites name only the code). docs/PROTOCOL.md §9 lists the same codes, and
// test/errors.test.ts keeps the two and every code used in src/ in step.
// Leaves out the error class itself (src/errors.ts) and the HTTP mapping (roles/common/http-errors.ts).

export type ErrorKind = 'protocol' | 'bad-input' | 'auth' | 'storage' | 'unavailable' | 'internal'

export interface ErrorSpec {
  readonly kind: ErrorKind
  readonly status: number
  /** "Thrown when …" */
  readonly when: string
}

const spec = (kind: ErrorKind, status: number, when: string): ErrorSpec => ({ kind, status, when })

export const ERRORS = {
  // ---- protocol (src/onion) ----
  MM_ERR_LENGTH: spec('protocol', 400, 'bytes have the wrong length: cell, layer, CREATE/CREATED, EXTEND, ERROR, DATA, envelope, key, session record, or a body too long for its hop'),
  MM_ERR_TYPE: spec('bad-input', 400, 'a key or buffer argument is not bytes'),
  MM_ERR_CIRC_ID: spec('protocol', 400, 'a circuit id is 0 or out of range, or a CREATE reuses a live circuit id'),
  MM_ERR_CHANNEL_CMD: spec('protocol', 400, 'a channel command is unknown or not valid in that direction (AUTH towards the initiator or at the server)'),
  MM_ERR_AUTH_UNLISTED: spec('auth', 401, 'AUTH names a fingerprint that is not a relay in the responder\'s consensus (§2.3)'),
  MM_ERR_AUTH_SIGNATURE: spec('auth', 401, 'an AUTH signature does not verify for this connection, this responder and the listed key'),
  MM_ERR_AUTH_ORDER: spec('protocol', 400, 'AUTH is not the first cell of the channel, or comes twice'),
  MM_ERR_AUTH_TLS: spec('auth', 401, 'AUTH arrives on a channel that does not run over TLS 1.3'),
  MM_ERR_LAYER_AUTH: spec('protocol', 400, 'a layer does not open at its position (AES-GCM fails): altered, or a cell of its circuit was dropped, repeated or reordered before it; the circuit ends'),
  MM_ERR_LAYER_FORMAT: spec('protocol', 400, 'an authentic layer has a bad inner header, or a backward cell is still layered after the last hop'),
  MM_ERR_HANDSHAKE: spec('protocol', 400, 'a CREATE secret does not decrypt with this identity, a CREATED proof mismatches, an X25519 key has low order, or an ephemeral key is used twice'),
  MM_ERR_KEY: spec('bad-input', 400, 'an identity key is not RSA SPKI DER'),
  MM_ERR_RELAY_MSG: spec('protocol', 400, 'an EXTEND host/port is bad, a DATA stream id is 0, DATA has unknown flags, or a RESET carries END, an offset, a total or data'),
  MM_ERR_RELAY_CMD: spec('protocol', 400, 'a relay command is not valid at this hop (final hop)'),
  MM_ERR_CIRCUIT: spec('bad-input', 400, 'the client names no such hop, more than MAX_HOPS hops, or an empty path'),
  MM_ERR_NO_CIRCUIT: spec('protocol', 400, 'a RELAY cell arrives for a circuit the final hop does not know'),
  MM_ERR_ENVELOPE: spec('protocol', 400, 'a request/response envelope is malformed (version, method, path, headers)'),
  MM_ERR_STREAMS: spec('protocol', 400, 'a circuit has too many open streams or requests in flight, or has used every stream id'),
  MM_ERR_STREAM_SEQUENCE: spec('protocol', 400, 'a DATA piece is not the next one of its stream: a piece missing, repeated or out of order, a changed total, END not at the total, or a piece of a stream that is over'),
  MM_ERR_STREAM_BUDGET: spec('unavailable', 503, 'a circuit (or the final hop as a whole) already holds its cap of half-received stream bytes'),
  MM_ERR_STREAM_EXPIRED: spec('protocol', 408, 'a half-received request was not complete within its time at the final hop'),
  MM_ERR_TOO_LARGE: spec('bad-input', 413, 'a stream message, request body, DM body or fetched document is over its limit'),
  MM_ERR_BUSY: spec('unavailable', 503, 'the circuit table (a CREATE is refused BUSY, no live circuit evicted), channel table, long-poll waiters or directory are full'),
  MM_ERR_CREATE_RATE: spec('unavailable', 503, 'a CREATE is refused BUSY before any handshake work: its previous hop (an address, or a listed relay on its authenticated channel) is over its CREATE budget (§5.5)'),
  MM_ERR_EXTEND_FAILED: spec('unavailable', 503, 'an EXTEND failed (not listed, malformed, a second one, unreachable, timed out, or refused by the next hop): after the ERROR the hop ends the circuit (§5.5)'),
  MM_ERR_CIRCUIT_QUEUE: spec('unavailable', 503, 'a circuit has more cells waiting at a hop than its cap (its work queue or its send queue on one channel): that circuit ends with DESTROY BUSY, the channel stays (§5.5)'),
  MM_ERR_CHANNEL_QUEUE: spec('unavailable', 503, 'a channel holds more than 32 MiB of cells in all its send queues: the channel closes with 1013 (§5.5)'),
  MM_ERR_QUEUE_MEMORY: spec('unavailable', 503, 'a relay\'s queued cells passed its memory budget: the circuits holding the oldest ones end with DESTROY BUSY (§5.5)'),
  MM_ERR_PEER_STALLED: spec('unavailable', 503, 'a channel\'s peer read nothing for the stall timeout while cells waited for it: the channel closes with 1013 (§5.5)'),
  MM_ERR_IDENTITY_KEY: spec('bad-input', 400, 'an RSA identity key (in a descriptor, a handshake or AUTH) has a modulus other than 2048 or 3072 bits or a public exponent other than 65537 (§7.1)'),
  MM_ERR_DESCRIPTOR: spec('bad-input', 400, 'a descriptor is malformed, expired or forged'),
  MM_ERR_DESCRIPTOR_STALE: spec('bad-input', 409, 'a descriptor is no newer than the last one accepted from that hop'),
  MM_ERR_DESCRIPTOR_REFUSED: spec('bad-input', 403, 'the directory does not accept a server descriptor with that fingerprint'),
  MM_ERR_ADDRESS_TAKEN: spec('bad-input', 409, 'a descriptor lists host:port of another live relay'),
  MM_ERR_REACHABILITY: spec('bad-input', 422, 'a descriptor\'s address does not answer with the hop\'s own identity when the directory checks it'),
  MM_ERR_CONSENSUS: spec('bad-input', 400, 'a consensus is malformed, not signed by the pinned key, or outside its validity'),
  MM_ERR_INTERNAL: spec('internal', 500, 'a bug: an invariant failed'),

  // ---- circuits and network (roles) ----
  MM_ERR_CIRCUIT_BUILD: spec('unavailable', 503, 'a hop could not be reached, refused, or did not answer while building'),
  MM_ERR_HOP_AUTH: spec('unavailable', 503, 'a hop failed the handshake: it does not hold the listed identity key (P4)'),
  MM_ERR_NOT_LISTED: spec('unavailable', 503, 'a hop refused to extend to a hop not in the consensus (P7)'),
  MM_ERR_CIRCUIT_CLOSED: spec('unavailable', 503, 'the circuit or its channel closed, or a hop reported an ERROR'),
  MM_ERR_CIRCUIT_INTEGRITY: spec('unavailable', 503, 'a cell of the circuit was dropped, repeated, reordered or altered on the way: a hop destroyed it with INTEGRITY, or a backward cell did not open at the client'),
  MM_ERR_CIRCUIT_DETACHED: spec('unavailable', 503, 'a circuit is used while detached from its entry channel'),
  MM_ERR_CIRCUIT_ID_IN_USE: spec('unavailable', 503, 'a circuit is reattached to a channel where its id is taken'),
  MM_ERR_TIMEOUT: spec('unavailable', 503, 'no response came through the circuit in time'),
  MM_ERR_REQUEST_FAILED: spec('unavailable', 503, 'a request through circuits failed on every attempt without an error of its own'),
  MM_ERR_UNREACHABLE: spec('unavailable', 503, 'a channel or HTTPS request could not be opened'),
  MM_ERR_NO_CONSENSUS: spec('unavailable', 503, 'a relay has no valid consensus yet'),
  MM_ERR_NO_SERVER: spec('unavailable', 503, 'the consensus lists no server'),
  MM_ERR_TOO_FEW_RELAYS: spec('unavailable', 503, 'the consensus lists too few relays for a path'),
  MM_ERR_NO_GUARD: spec('unavailable', 503, 'no entry guard of the client\'s sample can be used now (unreachable, unlisted or avoided for path bias); the client does not enter through another relay'),
  MM_ERR_DIR_REQUEST: spec('bad-input', 400, 'a directory request on a one-hop circuit is not one complete DATA piece asking GET /consensus'),
  MM_ERR_CONSENSUS_OLDER: spec('unavailable', 503, 'a directory source served a consensus older than the one the client holds'),
  MM_ERR_RATE: spec('bad-input', 429, 'too many descriptor posts from one address'),
  MM_ERR_CONFIG: spec('bad-input', 400, 'an option or a configured value is missing or invalid'),
  MM_ERR_DATA_DIR: spec('storage', 503, 'the data directory cannot be used'),
  MM_ERR_DEVNET: spec('bad-input', 400, 'no devnet is found in the given directory'),
  MM_ERR_CLOSED: spec('internal', 500, 'the client is used after it was closed'),
  MM_ERR_CANCELLED: spec('bad-input', 400, 'a prompt was cancelled'),

  // ---- server API and storage ----
  MM_ERR_BAD_JSON: spec('bad-input', 400, 'a request body is not valid JSON'),
  MM_ERR_MEDIA_TYPE: spec('bad-input', 415, 'a request body is not application/json'),
  MM_ERR_BAD_REQUEST: spec('bad-input', 400, 'a request is refused by the HTTP framework for a reason of its own'),
  MM_ERR_BAD_URL: spec('bad-input', 400, 'a request URL is malformed (bad percent-encoding)'),
  MM_ERR_NOT_FOUND: spec('bad-input', 404, 'no route matches the request'),
  MM_ERR_VALIDATION: spec('bad-input', 400, 'a request fails its route schema'),
  MM_ERR_BAD_QUERY: spec('bad-input', 400, 'query parameters that exclude each other are combined: `latest` or `before` with `after` or `wait`'),
  MM_ERR_BAD_CREDENTIALS: spec('auth', 401, 'a username or password is wrong'),
  MM_ERR_UNAUTHENTICATED: spec('auth', 401, 'a request needs a signed-in user'),
  MM_ERR_TOKEN: spec('auth', 401, 'a bearer token is missing, invalid or revoked'),
  MM_ERR_TOKEN_EXPIRED: spec('auth', 401, 'a bearer token has expired'),
  MM_ERR_INTERNAL_TOKEN: spec('auth', 401, 'the internal token between split services is missing or wrong'),
  MM_ERR_REVOCATION_UNAVAILABLE: spec('unavailable', 503, 'token revocation cannot be checked'),
  MM_ERR_PASSWORD_BUSY: spec('unavailable', 503, 'the server already runs and queues as many password checks (scrypt) as it allows, or holds as many throttled logins as it allows (§6.1)'),
  MM_ERR_CIRCUIT_RATE: spec('bad-input', 429, 'one circuit sends requests, or registers and logins, faster than its budget, or starts a second password check while one is running (§6.1)'),
  MM_ERR_OPERATOR_TOKEN: spec('auth', 401, 'an operator endpoint (`/metrics`) is called without the operator token, or with a wrong one (§8)'),
  MM_ERR_BAD_TEXT: spec('bad-input', 400, 'a message text is empty, too long or not well-formed'),
  MM_ERR_BAD_USERNAME: spec('bad-input', 400, 'a username breaks the name rules'),
  MM_ERR_BAD_USER: spec('bad-input', 400, 'a user name in a request is malformed'),
  MM_ERR_BAD_ROOM: spec('bad-input', 400, 'a room name breaks the name rules'),
  MM_ERR_ROOMS_FULL: spec('bad-input', 409, 'a client joins a room while it follows the most rooms a profile keeps (32)'),
  MM_ERR_BAD_INPUT: spec('bad-input', 400, 'a field of a request is malformed'),
  MM_ERR_EMPTY: spec('bad-input', 400, 'a required value is empty'),
  MM_ERR_PASSWORD: spec('bad-input', 400, 'a password breaks the password rules'),
  MM_ERR_USER_EXISTS: spec('bad-input', 409, 'a username is already taken'),
  MM_ERR_USER_UNKNOWN: spec('bad-input', 404, 'no such user'),
  MM_ERR_CLIENT_ID_REUSED: spec('bad-input', 409, 'a clientId was already used for another message'),
  MM_ERR_MESSAGE_TARGET: spec('bad-input', 400, 'a message names neither one room nor one DM peer'),
  MM_ERR_MESSAGE_QUERY: spec('bad-input', 400, 'a message query is malformed'),
  MM_ERR_UPSTREAM: spec('unavailable', 503, 'a split service is down'),
  MM_ERR_UPSTREAM_TIMEOUT: spec('unavailable', 504, 'a split service did not answer in time'),
  MM_ERR_STORE_URL: spec('bad-input', 400, 'a store URL is malformed or names an unknown scheme'),
  MM_ERR_STORE_CONFIG: spec('bad-input', 400, 'a store option is invalid'),
  MM_ERR_STORE_UNAVAILABLE: spec('unavailable', 503, 'a store cannot be reached'),
  MM_ERR_STORE_CLOSED: spec('internal', 500, 'a store is used after close'),
  MM_ERR_STORE_INTEGRITY: spec('storage', 500, 'a stored record is corrupt or fails its seal'),
  MM_ERR_MIGRATE_VERIFY: spec('storage', 500, 'a migration\'s copy does not match its source'),

  // ---- client profile, DMs and web UI ----
  MM_ERR_SENDER_CERT: spec('auth', 403, 'a sender certificate fails its offline check: layout, trust root other than the pinned directory key, signature, expiry, or its identity key is not the one that sealed the envelope or the contact\'s'),
  MM_ERR_SEALED: spec('bad-input', 400, 'a sealed envelope does not open (wrong recipient, altered, malformed, bad padding)'),
  MM_ERR_SEALED_UNAUTHORIZED: spec('auth', 401, 'a sealed send carries neither a delivery token nor an anonymous token'),
  MM_ERR_DELIVERY_TOKEN: spec('auth', 403, 'a sealed send\'s delivery token does not match the recipient\'s (or the recipient has none)'),
  MM_ERR_STRANGERS_REFUSED: spec('auth', 403, 'a sealed send without a delivery token goes to a recipient whose setting refuses strangers'),
  MM_ERR_STRANGER_RATE: spec('bad-input', 429, 'a recipient already got as many sealed messages from strangers this hour as the server allows'),
  MM_ERR_ANON_TOKEN: spec('auth', 403, 'an anonymous (Privacy Pass) token or token request is malformed, for another key or epoch, or does not verify'),
  MM_ERR_ANON_TOKEN_SPENT: spec('auth', 403, 'an anonymous token was already redeemed (with another message)'),
  MM_ERR_ANON_TOKEN_BUDGET: spec('bad-input', 429, 'an account asks for more anonymous tokens than its budget for the key epoch, or too many at once'),
  MM_ERR_ANON_STORE_FULL: spec('unavailable', 503, 'the double-spend store holds its cap of spent tokens for the epoch: redemption waits for the next epoch'),
  MM_ERR_SEALED_IDENTIFIED: spec('bad-input', 400, 'a sealed send or an anonymous-token key fetch carries an Authorization header (it must carry no JWT)'),
  MM_ERR_CIRCUIT_MIXED: spec('bad-input', 400, 'one circuit carries both identified requests (a JWT, register, login) and anonymous ones (a sealed send, the token key): each kind needs its own circuit'),
  MM_ERR_SEALED_UNAVAILABLE: spec('unavailable', 503, 'this server (a split service) is not set up for sealed sender'),
  MM_ERR_BAD_DM: spec('bad-input', 400, 'a DM cannot be sealed (bad header field, text too long)'),
  MM_ERR_BAD_KEY: spec('bad-input', 400, 'an end-to-end key is not base64 of 32 raw bytes, is a low-order point, or does not match its private key'),
  MM_ERR_NO_KEYS: spec('bad-input', 404, 'a user has no end-to-end keys yet'),
  MM_ERR_BAD_PREKEY: spec('bad-input', 400, 'a prekey or prekey bundle is refused: a signature does not verify, a key has the wrong length or low order, ids repeat, or a batch is over its bound'),
  MM_ERR_NO_PREKEYS: spec('bad-input', 404, 'a user has published no prekey bundle yet (an older client): no session can start'),
  MM_ERR_KEY_CHANGED: spec('auth', 409, 'a contact\'s key differs from the one pinned on first use'),
  MM_ERR_BAD_PASSWORD: spec('auth', 401, 'a profile password does not open the profile'),
  MM_ERR_PROFILE_EXISTS: spec('bad-input', 409, 'a profile for that user already exists'),
  MM_ERR_PROFILE_UNKNOWN: spec('bad-input', 404, 'no profile for that user in this home'),
  MM_ERR_PROFILE_CORRUPT: spec('storage', 503, 'a profile file is corrupt'),
  MM_ERR_KEYS_MISMATCH: spec('auth', 409, 'at login, the server holds other end-to-end keys for the user than the local profile (replaced only when the user confirms)'),
  MM_ERR_HTTP: spec('unavailable', 502, 'the server answered an error without a code this client knows'),
  MM_ERR_NOT_LOGGED_IN: spec('auth', 401, 'the chat client is used before login'),
  MM_ERR_NO_NETWORK: spec('bad-input', 400, 'no network is configured'),
  MM_ERR_WEB_HOST: spec('auth', 403, 'a web UI request names the wrong Host'),
  MM_ERR_WEB_ORIGIN: spec('auth', 403, 'a web UI request comes from another origin'),
  MM_ERR_WEB_TOKEN: spec('auth', 403, 'a web UI request lacks the per-run token'),
  MM_ERR_WEB_CONTENT_TYPE: spec('auth', 403, 'a web UI write is not application/json'),
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

export const isErrorCode = (code: unknown): code is ErrorCode =>
  typeof code === 'string' && Object.hasOwn(ERRORS, code)
