// A user's DM state at rest: home/profiles/<username>/dm-state.json holds the prekey private
// keys, the Double Ratchet sessions, the PQXDH messages already accepted and the local DM
// history, as one JSON document sealed with AES-256-GCM under a key derived (HKDF-SHA-256)
// from the identity's private keys, which identity.json keeps under scrypt(password): the
// file opens only with the password, like the profile. One file, replaced atomically, so a
// ratchet step and the message it revealed are written together (a crash cannot leave a
// message key behind that a replay could use). Leaves out locking between processes.

import { join } from 'node:path'
import { aesGcmOpen, aesGcmSeal, hkdfSha256, randomBytes } from '../../../onion/crypto/primitives.js'
import type { SessionJson } from '../../../onion/crypto/session.js'
import type { Identity } from '../e2e/keys.js'
import { checkUsername, corrupt, ensureProfileDir, isObject, profileDir, readJson, serialized, writeFileAtomic } from './files.js'

export const DM_STATE_FILE = 'dm-state.json'
const CONTEXT = 'marshmello/profile/dm-state/v1'

export interface PrekeySecretsJson {
  /** the current signed prekey (`at`: when it was made; absent in older files), and the one before it (messages already on their way) */
  signed: { id: number, priv: string, at?: number } | null
  previousSigned: { id: number, priv: string } | null
  lastResort: { id: number, seed: string } | null
  /** the last-resort ML-KEM prekey before the current one, kept as previousSigned is (absent in older files) */
  previousLastResort?: { id: number, seed: string } | null
  /** id -> base64 X25519 private key */
  oneTime: Record<string, string>
  /** id -> base64 ML-KEM-768 seed */
  oneTimeKem: Record<string, string>
  /** the next prekey id to hand out (ids are unique across kinds) */
  nextId: number
}

/**
 * A DM in the local history. `pending`: sent from here, written with the ratchet step before
 * it left, its server id not known yet (`id` is PENDING_PREFIX + its client id, which sorts
 * after every server id).
 */
export interface HistoryEntry { id: string, from: string, to: string, text: string, sentAt: number, pending?: true }

/** the id of a pending entry: '~' sorts after every character of a server id (PROTOCOL §6) */
export const PENDING_PREFIX = '~'

export interface DmStateData {
  prekeys: PrekeySecretsJson
  /** peer -> sessions, the active one first */
  sessions: Record<string, SessionJson[]>
  /** base64 of SHA-256(EKA ‖ CT)[0..16) of every PQXDH message accepted (bounded) */
  seen: string[]
  /** DMs shown so far, by server id, oldest first (bounded): a session decrypts a message once */
  history: HistoryEntry[]
}

export const emptyDmState = (): DmStateData => ({
  prekeys: { signed: null, previousSigned: null, lastResort: null, oneTime: {}, oneTimeKem: {}, nextId: 1 },
  sessions: Object.create(null),
  seen: [],
  history: []
})

function stateKey (identity: Identity, username: string): Buffer {
  const ikm = Buffer.concat([identity.enc.privateKey, identity.sign.privateKey])
  try {
    return hkdfSha256(ikm, Buffer.from(CONTEXT, 'utf8'), Buffer.from(username, 'utf8'), 32)
  } finally {
    ikm.fill(0)
  }
}

const aad = (username: string) => Buffer.from(`${CONTEXT}\0${username}`, 'utf8')
const pathOf = (home: string | undefined, me: string) => join(profileDir(home, me), DM_STATE_FILE)

/**
 * The state, or a fresh one when there is no file. A file sealed under other keys (the
 * account's keys were replaced) is answered as `stale`: the caller starts over.
 */
export async function loadDmState (home: string | undefined, me: string, identity: Identity): Promise<{ data: DmStateData, stale: boolean }> {
  checkUsername(me)
  const path = pathOf(home, me)
  const raw = await readJson(path)
  if (raw === undefined) return { data: emptyDmState(), stale: false }
  if (!isObject(raw) || raw.version !== 1 || typeof raw.nonce !== 'string' || typeof raw.sealed !== 'string') throw corrupt(path, 'not a DM state file')
  const key = stateKey(identity, me)
  const plain = aesGcmOpen(key, Buffer.from(raw.nonce, 'base64'), Buffer.from(raw.sealed, 'base64'), aad(me))
  key.fill(0)
  if (plain === null) return { data: emptyDmState(), stale: true }
  let data: unknown
  try {
    data = JSON.parse(plain.toString('utf8'))
  } catch {
    throw corrupt(path, 'sealed DM state is not JSON')
  } finally {
    plain.fill(0)
  }
  if (!isObject(data) || !isObject(data.prekeys) || !isObject(data.sessions) || !Array.isArray(data.seen) || !Array.isArray(data.history)) {
    throw corrupt(path, 'sealed DM state has the wrong shape')
  }
  const sessions: Record<string, SessionJson[]> = Object.create(null)
  for (const [peer, list] of Object.entries(data.sessions)) {
    if (!Array.isArray(list)) throw corrupt(path, 'bad sessions')
    sessions[peer] = list as SessionJson[]
  }
  return { data: { ...(data as unknown as DmStateData), sessions }, stale: false }
}

/** Seals and writes the whole state (atomic replace, mode 0600). */
export async function saveDmState (home: string | undefined, me: string, identity: Identity, data: DmStateData): Promise<void> {
  checkUsername(me)
  const path = pathOf(home, me)
  const key = stateKey(identity, me)
  const nonce = randomBytes(12)
  const plain = Buffer.from(JSON.stringify(data), 'utf8')
  const sealed = aesGcmSeal(key, nonce, plain, aad(me))
  key.fill(0)
  plain.fill(0)
  await serialized(path, async () => {
    await ensureProfileDir(home, me)
    await writeFileAtomic(path, JSON.stringify({ version: 1, cipher: 'aes-256-gcm', nonce: nonce.toString('base64'), sealed: sealed.toString('base64') }) + '\n')
  })
}
