// The Double Ratchet with header encryption (Signal, "The Double Ratchet Algorithm",
// revision 1, Perrin and Marlinspike, §4), as a pure state machine: ratchetEncrypt and
// ratchetDecrypt take a state and return the next one, so a failed decryption changes
// nothing (§3.5: "changes to the state object are discarded") and the caller persists each
// new state before it shows a message. Functions (§5.2): X25519, KDF_RK = HKDF-SHA-256 with
// the root key as salt (96 bytes: RK, CK, NHK, §4.2), KDF_CK = HMAC-SHA-256 with constants
// 0x01 / 0x02, ENCRYPT = AES-256-GCM under a key and nonce expanded from the message key
// (each message key encrypts once), HENCRYPT = AES-256-GCM with a random 96-bit nonce (a
// header key is used many times). Skipped message keys are bounded: at most MAX_SKIP per
// chain (§3.5) and MAX_SKIPPED_TOTAL in all, the oldest dropped first (§6.4). A message key
// is erased as soon as it is used or dropped; a message whose key is gone is refused.
import { aesGcmOpen, aesGcmSeal, equalBytes, hkdfSha256, hmacSha256, x25519, x25519PublicFromPrivate } from './primitives.js'
import { randomBytes } from './random.js'

export const MAX_SKIP = 1000
export const MAX_SKIPPED_TOTAL = 2000
const INFO_RK = Buffer.from('Marshmello_DoubleRatchet_root', 'ascii')
const INFO_MK = Buffer.from('Marshmello_DoubleRatchet_message', 'ascii')
const NONCE = 12
const TAG = 16
/** HEADER(dh, pn, n): dh (32) ‖ pn (u32 BE) ‖ n (u32 BE) */
const HEADER_BYTES = 40
/** nonce ‖ AES-256-GCM(header) ‖ tag */
export const ENC_HEADER_BYTES = NONCE + HEADER_BYTES + TAG
const MAX_COUNTER = 0xffffffff

export type Rng = (n: number) => Uint8Array

/** §4.3 state variables; buffers are owned by the state (never shared with another state). */
export interface RatchetState {
  /** DHs: our ratchet key pair */
  dhsPrivate: Buffer
  dhsPublic: Buffer
  /** DHr: the peer's ratchet public key */
  dhr: Buffer | null
  rk: Buffer
  cks: Buffer | null
  ckr: Buffer | null
  ns: number
  nr: number
  pn: number
  hks: Buffer | null
  hkr: Buffer | null
  nhks: Buffer
  nhkr: Buffer
  /** MKSKIPPED, oldest first: (header key, n) -> message key */
  skipped: Array<{ hk: Buffer, n: number, mk: Buffer }>
}

export type DecryptFailure = 'malformed' | 'undecryptable' | 'replay' | 'too-far'
export type DecryptResult =
  | { ok: true, state: RatchetState, plaintext: Buffer }
  | { ok: false, reason: DecryptFailure }

const copy = (b: Buffer | null): Buffer | null => b === null ? null : Buffer.from(b)

export function cloneState (s: RatchetState): RatchetState {
  return {
    ...s,
    dhsPrivate: Buffer.from(s.dhsPrivate),
    dhsPublic: Buffer.from(s.dhsPublic),
    dhr: copy(s.dhr),
    rk: Buffer.from(s.rk),
    cks: copy(s.cks),
    ckr: copy(s.ckr),
    hks: copy(s.hks),
    hkr: copy(s.hkr),
    nhks: Buffer.from(s.nhks),
    nhkr: Buffer.from(s.nhkr),
    skipped: s.skipped.map((e) => ({ hk: Buffer.from(e.hk), n: e.n, mk: Buffer.from(e.mk) }))
  }
}

/** erases every secret of a state that is no longer used */
export function wipeState (s: RatchetState): void {
  for (const b of [s.dhsPrivate, s.rk, s.cks, s.ckr, s.hks, s.hkr, s.nhks, s.nhkr]) b?.fill(0)
  for (const e of s.skipped) e.mk.fill(0)
}

function generateDh (rng: Rng): { priv: Buffer, pub: Buffer } {
  const priv = Buffer.from(rng(32))
  return { priv, pub: x25519PublicFromPrivate(priv) }
}

/** §4.2 KDF_RK_HE(rk, dh_out) -> (RK, CK, NHK) */
function kdfRk (rk: Buffer, dhOut: Buffer): [Buffer, Buffer, Buffer] {
  const out = hkdfSha256(dhOut, rk, INFO_RK, 96)
  dhOut.fill(0)
  return [out.subarray(0, 32), out.subarray(32, 64), out.subarray(64, 96)]
}

/** §5.2 KDF_CK(ck) -> (CK, mk) */
function kdfCk (ck: Buffer): [Buffer, Buffer] {
  return [hmacSha256(ck, Buffer.of(0x02)), hmacSha256(ck, Buffer.of(0x01))]
}

/** ENCRYPT/DECRYPT key schedule: the message key expands into an AES key and a nonce */
function messageCipher (mk: Buffer): { key: Buffer, nonce: Buffer } {
  const out = hkdfSha256(mk, Buffer.alloc(32), INFO_MK, 32 + NONCE)
  return { key: out.subarray(0, 32), nonce: out.subarray(32) }
}

/** CONCAT(AD, header): unambiguous, since the encrypted header has one fixed length */
const concat = (ad: Uint8Array, encHeader: Uint8Array): Buffer => Buffer.concat([ad, encHeader])

function hencrypt (hk: Buffer, dh: Buffer, pn: number, n: number, rng: Rng): Buffer {
  const plain = Buffer.alloc(HEADER_BYTES)
  dh.copy(plain, 0)
  plain.writeUInt32BE(pn, 32)
  plain.writeUInt32BE(n, 36)
  const nonce = Buffer.from(rng(NONCE))
  return Buffer.concat([nonce, aesGcmSeal(hk, nonce, plain)])
}

interface Header { dh: Buffer, pn: number, n: number }

function hdecrypt (hk: Buffer | null, enc: Buffer): Header | null {
  if (hk === null) return null
  const plain = aesGcmOpen(hk, enc.subarray(0, NONCE), enc.subarray(NONCE))
  if (plain === null || plain.length !== HEADER_BYTES) return null
  return { dh: Buffer.from(plain.subarray(0, 32)), pn: plain.readUInt32BE(32), n: plain.readUInt32BE(36) }
}

/** §4.4 RatchetInitAliceHE: Alice knows Bob's ratchet key (his signed prekey, §5.1) */
export function ratchetInitAlice (sk: Uint8Array, bobDhPublic: Uint8Array, sharedHka: Uint8Array, sharedNhkb: Uint8Array, rng: Rng = randomBytes): RatchetState {
  const dhs = generateDh(rng)
  const dhr = Buffer.from(bobDhPublic)
  const [rk, cks, nhks] = kdfRk(Buffer.from(sk), x25519(dhs.priv, dhr))
  return {
    dhsPrivate: dhs.priv, dhsPublic: dhs.pub, dhr, rk, cks, ckr: null, ns: 0, nr: 0, pn: 0,
    hks: Buffer.from(sharedHka), hkr: null, nhks, nhkr: Buffer.from(sharedNhkb), skipped: []
  }
}

/** §4.4 RatchetInitBobHE: Bob's ratchet key pair is his signed prekey */
export function ratchetInitBob (sk: Uint8Array, bobDhPrivate: Uint8Array, sharedHka: Uint8Array, sharedNhkb: Uint8Array): RatchetState {
  return {
    dhsPrivate: Buffer.from(bobDhPrivate), dhsPublic: x25519PublicFromPrivate(bobDhPrivate), dhr: null, rk: Buffer.from(sk),
    cks: null, ckr: null, ns: 0, nr: 0, pn: 0, hks: null, hkr: null, nhks: Buffer.from(sharedNhkb), nhkr: Buffer.from(sharedHka), skipped: []
  }
}

/** whether this state can send (Bob cannot before his first received message) */
export const canSend = (s: RatchetState): boolean => s.cks !== null && s.hks !== null

/** §4.5 RatchetEncryptHE: returns the next state and enc_header ‖ ciphertext. */
export function ratchetEncrypt (state: RatchetState, plaintext: Uint8Array, ad: Uint8Array, rng: Rng = randomBytes): { state: RatchetState, message: Buffer } {
  if (!canSend(state)) throw new Error('ratchet cannot send before it has received')
  if (state.ns >= MAX_COUNTER) throw new Error('ratchet chain exhausted')
  const s = cloneState(state)
  const [ck, mk] = kdfCk(s.cks!)
  s.cks!.fill(0)
  s.cks = ck
  const encHeader = hencrypt(s.hks!, s.dhsPublic, s.pn, s.ns, rng)
  s.ns += 1
  const { key, nonce } = messageCipher(mk)
  mk.fill(0)
  const body = aesGcmSeal(key, nonce, plaintext, concat(ad, encHeader))
  key.fill(0)
  return { state: s, message: Buffer.concat([encHeader, body]) }
}

/** §4.6 RatchetDecryptHE. Never throws on a message; on failure the input state stays valid. */
export function ratchetDecrypt (state: RatchetState, message: Uint8Array, ad: Uint8Array, rng: Rng = randomBytes): DecryptResult {
  if (!(message instanceof Uint8Array) || message.length < ENC_HEADER_BYTES + TAG) return { ok: false, reason: 'malformed' }
  const msg = Buffer.from(message)
  const encHeader = msg.subarray(0, ENC_HEADER_BYTES)
  const body = msg.subarray(ENC_HEADER_BYTES)
  const aad = concat(ad, encHeader)
  const s = cloneState(state)
  try {
    // TrySkippedMessageKeysHE
    for (let i = 0; i < s.skipped.length; i++) {
      const e = s.skipped[i]
      const h = hdecrypt(e.hk, encHeader)
      if (h === null || h.n !== e.n) continue
      const plain = open(e.mk, body, aad)
      if (plain === null) return { ok: false, reason: 'undecryptable' }
      e.mk.fill(0)
      s.skipped.splice(i, 1)
      return { ok: true, state: s, plaintext: plain }
    }
    // DecryptHeader
    let header = hdecrypt(s.hkr, encHeader)
    let newChain = false
    if (header === null) {
      header = hdecrypt(s.nhkr, encHeader)
      newChain = true
    }
    // a header under no key we hold: garbage, or a message of an old chain whose keys are gone
    if (header === null) return { ok: false, reason: 'undecryptable' }
    if (!newChain && header.n < s.nr) return { ok: false, reason: 'replay' }
    if (newChain && s.dhr !== null && equalBytes(header.dh, s.dhr)) return { ok: false, reason: 'undecryptable' }
    if (newChain) {
      if (!skip(s, header.pn)) return { ok: false, reason: 'too-far' }
      dhRatchet(s, header, rng)
    }
    if (!skip(s, header.n)) return { ok: false, reason: 'too-far' }
    const [ck, mk] = kdfCk(s.ckr!)
    s.ckr!.fill(0)
    s.ckr = ck
    s.nr += 1
    const plain = open(mk, body, aad)
    mk.fill(0)
    if (plain === null) return { ok: false, reason: 'undecryptable' }
    return { ok: true, state: s, plaintext: plain }
  } catch {
    // a low-order ratchet key from the peer, or a counter at its limit
    return { ok: false, reason: 'undecryptable' }
  }
}

function open (mk: Buffer, body: Buffer, aad: Buffer): Buffer | null {
  const { key, nonce } = messageCipher(mk)
  try {
    return aesGcmOpen(key, nonce, body, aad)
  } finally {
    key.fill(0)
  }
}

/** §4.6 SkipMessageKeysHE; false when `until` is beyond MAX_SKIP */
function skip (s: RatchetState, until: number): boolean {
  if (s.nr + MAX_SKIP < until) return false
  if (s.ckr === null) return true
  while (s.nr < until) {
    const [ck, mk] = kdfCk(s.ckr)
    s.ckr.fill(0)
    s.ckr = ck
    s.skipped.push({ hk: Buffer.from(s.hkr!), n: s.nr, mk })
    s.nr += 1
  }
  while (s.skipped.length > MAX_SKIPPED_TOTAL) s.skipped.shift()!.mk.fill(0)
  return true
}

/** §4.6 DHRatchetHE */
function dhRatchet (s: RatchetState, header: Header, rng: Rng): void {
  s.pn = s.ns
  s.ns = 0
  s.nr = 0
  s.hks?.fill(0)
  s.hkr?.fill(0)
  s.hks = s.nhks
  s.hkr = s.nhkr
  s.dhr = header.dh
  let [rk, ckr, nhkr] = kdfRk(s.rk, x25519(s.dhsPrivate, s.dhr))
  s.rk.fill(0)
  s.ckr?.fill(0)
  s.rk = rk
  s.ckr = ckr
  s.nhkr = nhkr
  s.dhsPrivate.fill(0)
  const dhs = generateDh(rng)
  s.dhsPrivate = dhs.priv
  s.dhsPublic = dhs.pub
  let cks: Buffer
  let nhks: Buffer
  ;[rk, cks, nhks] = kdfRk(s.rk, x25519(s.dhsPrivate, s.dhr))
  s.rk.fill(0)
  s.cks?.fill(0)
  s.rk = rk
  s.cks = cks
  s.nhks = nhks
}

/* ---- persistence: a JSON-safe form (base64), for the profile's sealed store ---- */

export interface RatchetStateJson {
  dhs: string, dhr: string | null, rk: string, cks: string | null, ckr: string | null
  ns: number, nr: number, pn: number, hks: string | null, hkr: string | null, nhks: string, nhkr: string
  skipped: Array<[string, number, string]>
}

const b64 = (b: Buffer): string => b.toString('base64')
const b64n = (b: Buffer | null): string | null => b === null ? null : b.toString('base64')

export function stateToJson (s: RatchetState): RatchetStateJson {
  return {
    dhs: b64(s.dhsPrivate), dhr: b64n(s.dhr), rk: b64(s.rk), cks: b64n(s.cks), ckr: b64n(s.ckr),
    ns: s.ns, nr: s.nr, pn: s.pn, hks: b64n(s.hks), hkr: b64n(s.hkr), nhks: b64(s.nhks), nhkr: b64(s.nhkr),
    skipped: s.skipped.map((e) => [b64(e.hk), e.n, b64(e.mk)])
  }
}

/** Throws Error on anything that is not a saved state (the caller reports the file as corrupt). */
export function stateFromJson (j: RatchetStateJson): RatchetState {
  const key = (v: unknown): Buffer => {
    if (typeof v !== 'string') throw new Error('bad key')
    const b = Buffer.from(v, 'base64')
    if (b.length !== 32 || b.toString('base64') !== v) throw new Error('bad key')
    return b
  }
  const keyN = (v: unknown): Buffer | null => v === null ? null : key(v)
  const count = (v: unknown): number => {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_COUNTER) throw new Error('bad counter')
    return v as number
  }
  if (j == null || typeof j !== 'object' || !Array.isArray(j.skipped) || j.skipped.length > MAX_SKIPPED_TOTAL) throw new Error('bad state')
  const dhsPrivate = key(j.dhs)
  return {
    dhsPrivate, dhsPublic: x25519PublicFromPrivate(dhsPrivate), dhr: keyN(j.dhr), rk: key(j.rk), cks: keyN(j.cks), ckr: keyN(j.ckr),
    ns: count(j.ns), nr: count(j.nr), pn: count(j.pn), hks: keyN(j.hks), hkr: keyN(j.hkr), nhks: key(j.nhks), nhkr: key(j.nhkr),
    skipped: j.skipped.map((e) => {
      if (!Array.isArray(e) || e.length !== 3) throw new Error('bad skipped key')
      return { hk: key(e[0]), n: count(e[1]), mk: key(e[2]) }
    })
  }
}
