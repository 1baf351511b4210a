// The outbox kept in the profile (home/profiles/<me>/outbox.json, 0600), so a message
// typed but not yet stored by the server survives the client's exit or a crash and is
// sent at the next start under the same client id (the server stores it once,
// PROTOCOL §6). The items are sealed at rest like the profile's keys: AES-256-GCM under
// a key derived with HKDF-SHA256 from the user's private keys, which only the password
// unlocks (identity.ts), a fresh nonce per write, the username bound as AAD. Bounded:
// at most MAX_KEPT items of at most one message each; a larger file is not read.
// Leaves out the queue itself (outbox.ts) and when it is written (kept-outbox.ts).

import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { aesGcmOpen, aesGcmSeal, hkdfSha256, randomBytes } from '../../../onion/crypto/primitives.js'
import { checkMessageText } from '../../../limits.js'
import { isRoomName, isUsername } from '../../../names.js'
import type { SavedItem } from '../outbox.js'
import { corrupt, ensureProfileDir, isObject, profileDir, readJson, serialized, writeFileAtomic } from './files.js'

export const OUTBOX_FILE = 'outbox.json'
/** the outbox's own bound (Outbox maxItems) */
export const MAX_KEPT = 100
/** 100 messages of 4,000 characters of up to 4 UTF-8 bytes, sealed and in base64: under 2.2 MB */
const MAX_FILE_BYTES = 2_300_000
const CLIENT_ID = /^[A-Za-z0-9_.:-]{1,64}$/
const LABEL = 'marshmello/outbox/v1'

export class OutboxFile {
  private readonly key: Buffer
  readonly path: string
  /** the newest items asked to be written while a write runs: written next, the ones between skipped */
  private nextItems: SavedItem[] | null = null
  private writing: Promise<void> | null = null

  /** `secret`: the user's private keys (enc ‖ sign); copied into a derived key, never kept */
  constructor (private readonly home: string | undefined, readonly username: string, secret: Uint8Array) {
    this.path = join(profileDir(home, username), OUTBOX_FILE)
    this.key = hkdfSha256(secret, Buffer.from(LABEL), Buffer.from(username), 32)
  }

  /**
   * The kept items, oldest first; none when there is no file. A file that is not one this
   * user's keys sealed (damaged, or from another account) throws MM_ERR_PROFILE_CORRUPT.
   */
  async load (): Promise<SavedItem[]> {
    try {
      const st = await fs.stat(this.path)
      if (st.size > MAX_FILE_BYTES) throw corrupt(this.path, `larger than ${MAX_FILE_BYTES} bytes`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const raw = await readJson(this.path)
    if (raw === undefined) return []
    if (!isObject(raw) || raw.version !== 1 || typeof raw.nonce !== 'string' || typeof raw.sealed !== 'string') throw corrupt(this.path, 'not an outbox file (version 1)')
    const nonce = Buffer.from(raw.nonce, 'base64')
    const plain = nonce.length === 12 ? aesGcmOpen(this.key, nonce, Buffer.from(raw.sealed, 'base64'), this.aad()) : null
    if (plain === null) throw corrupt(this.path, 'cannot be opened with this profile\'s keys')
    let items: unknown
    try { items = JSON.parse(plain.toString('utf8')) } catch { items = null } finally { plain.fill(0) }
    if (!Array.isArray(items) || items.length > MAX_KEPT) throw corrupt(this.path, `expected at most ${MAX_KEPT} items`)
    return items.map((i) => parseItem(this.path, i))
  }

  /**
   * Keeps `items` (the whole unsent queue); none removes the file. Writes run one at a
   * time; of several asked for meanwhile only the newest is written. Resolves once the
   * items (or newer ones) are on disk.
   */
  async save (items: SavedItem[]): Promise<void> {
    this.nextItems = items.slice(0, MAX_KEPT)
    while (this.nextItems !== null) {
      if (this.writing) { await this.writing; continue }
      const now = this.nextItems
      this.nextItems = null
      this.writing = this.write(now).finally(() => { this.writing = null })
      await this.writing
    }
    await this.writing
  }

  private async write (items: SavedItem[]): Promise<void> {
    await serialized(this.path, async () => {
      if (items.length === 0) {
        await fs.rm(this.path, { force: true })
        return
      }
      const nonce = randomBytes(12)
      const plain = Buffer.from(JSON.stringify(items), 'utf8')
      const sealed = aesGcmSeal(this.key, nonce, plain, this.aad())
      plain.fill(0)
      await ensureProfileDir(this.home, this.username)
      await writeFileAtomic(this.path, JSON.stringify({ version: 1, nonce: nonce.toString('base64'), sealed: sealed.toString('base64') }) + '\n')
    })
  }

  private aad (): Buffer { return Buffer.from(`${LABEL}\u0000${this.username}`, 'utf8') }
}

function parseItem (path: string, i: unknown): SavedItem {
  const bad = () => corrupt(path, 'an item is not a kept message')
  if (!isObject(i) || typeof i.clientId !== 'string' || !CLIENT_ID.test(i.clientId)) throw bad()
  const t = i.target
  let target: SavedItem['target']
  if (isObject(t) && isRoomName(t.room) && t.to === undefined) target = { room: t.room }
  else if (isObject(t) && isUsername(t.to) && t.room === undefined) target = { to: t.to }
  else throw bad()
  if (typeof i.text !== 'string' || !checkMessageText(i.text).ok) throw bad()
  if (typeof i.queuedAt !== 'number' || !Number.isFinite(i.queuedAt)) throw bad()
  if (i.state !== 'queued' && i.state !== 'failed') throw bad()
  const out: SavedItem = { clientId: i.clientId, target, text: i.text, queuedAt: i.queuedAt, state: i.state }
  if (typeof i.error === 'string') out.error = i.error.slice(0, 500)
  return out
}
