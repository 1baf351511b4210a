// The JSON the web UI's local API and its page exchange (app.ts ↔ ui/api.ts): types
// only, so the browser bundle and the server share one definition. Leaves out the
// onion API the ChatClient speaks (docs/PROTOCOL.md §6), of which this is a view.

/** a message as the page sees it: a DM that failed verification carries no text */
export interface MessageView {
  id: string
  from: string
  sentAt: number
  /** room messages only */
  room?: string
  /** DMs only */
  to?: string
  /** DMs only: signature and decryption checked against the sender's pinned key */
  verified?: boolean
  /** null for a DM that failed verification */
  text: string | null
  warning?: string
  /** DMs only: the safety number with the other party, and whether the user verified them */
  safetyNumber?: string
  contactVerified?: boolean
}

/** one hop of the current circuit, relays first, then the server (the final hop) */
export interface HopView { nickname: string, role: string, fingerprint: string, host: string, port: number }

export interface NetworkView {
  configured: boolean
  error: string | null
  devnetDir: string | null
  relays: string[]
  directoryKey: string | null
}

/** where a message goes: a room or a DM peer */
export interface Target { kind: 'room' | 'dm', name: string }

/**
 * A message typed but not (yet) stored by the server: `sending` while it is tried (and
 * retried while the network is down), `sent` once stored (`message` then, except a DM
 * whose first try was stored without our hearing), `failed` with the reason (retry
 * puts it back to `sending`).
 */
export interface OutboxView {
  clientId: string
  target: Target
  text: string
  state: 'sending' | 'sent' | 'failed'
  queuedAt: number
  attempts: number
  error?: string
  message?: MessageView
}

/** a room on the server (GET /api/room-list): exists because it holds messages; no members are known */
export interface RoomInfoView { name: string, messages: number, lastAt: number }

/** GET /api/room-list: one page by name; `cursor` (the last name) asks for the next with `after` */
export interface RoomListView { rooms: RoomInfoView[], cursor: string | null, hasMore: boolean }

/** GET …/messages: the newest (or those before `before`), oldest first; `older`: more are cached */
export interface MessagesPage { messages: MessageView[], older: boolean }

export interface SessionView {
  loggedIn: boolean
  username: string | null
  rooms: string[]
  dmPeers: string[]
  /** sends not yet stored, oldest first */
  outbox: OutboxView[]
  /** false while the network cannot be reached (the UI keeps retrying) */
  online: boolean
  network: NetworkView
  /** the newest event's number, where the page starts its long-poll */
  lastEvent: number
}

/** a contact's key as pinned on first use (TOFU) */
export type KeyStatus = 'new' | 'same' | 'changed'

export interface WhoisView {
  username: string
  fingerprint: string
  status: KeyStatus
  /** 60 digits in groups of five (PROTOCOL §11.4); the same on both sides */
  safetyNumber?: string
  /** text for a QR code of the safety number */
  safetyQr?: string
  /** the user marked this key verified */
  verified?: boolean
}

/** the body of every error answer; a 409 MM_ERR_KEY_CHANGED also names both keys */
export interface ErrorBody {
  code: string
  message: string
  username?: string
  oldFingerprint?: string
  newFingerprint?: string
}

/** PUT /api/network: a devnet directory, or a bootstrap relay and the directory key */
export type NetworkChange = { devnet: string } | { relay: string, directoryKey: string }
