// End-to-end encryption of direct messages (docs/PROTOCOL.md, "DM envelope v1"): a fresh
// content key encrypts the text (AES-256-GCM), is wrapped for the recipient and for the
// sender (ephemeral X25519 + HKDF-SHA256 + AES-256-GCM), and the sender's Ed25519 key signs
// every byte. The layout is envelope.ts; key handling is keys.ts. Leaves out key lookup,
// pinning (profile/contacts.ts) and de-duplication of replayed (from, clientId) pairs.

import { MarshmelloError } from '../../../errors.js'
import { ed25519SignKey, ed25519VerifyKey, x25519Agree } from '../../../onion/crypto/okp.js'
import { aesGcmOpen as gcmOpen, aesGcmSeal as gcmSeal, hkdfSha256, randomBytes } from '../../../onion/crypto/primitives.js'
import {
  EnvelopeFormatError, MAX_ENVELOPE_BYTES, MAX_TEXT_BYTES, TAG_BYTES,
  decodeEnvelope, encodeHeader, encodeSigned, type DmHeader, type Wrap
} from './envelope.js'
import { privateKeyObject, publicKeyObject, rawKey, rawPublic, type RawKeyPair } from './keys.js'

/** HKDF info prefix of a wrap key; the info is this ‖ ephemeral public ‖ recipient public. */
export const WRAP_INFO = Buffer.from('marshmello/dm/v1', 'utf8')
/** Signed data = this ‖ envelope bytes before the signature (domain separation). */
export const SIG_CONTEXT = Buffer.from('marshmello/dm/v1/sig', 'utf8')
/** Each AES-GCM key below encrypts exactly one message, so a fixed zero nonce is safe. */
const ZERO_NONCE = Buffer.alloc(12)

export type DmFailure = 'bad-signature' | 'undecryptable' | 'malformed' | 'mismatch'

export type OpenedDm =
  | { verified: true, text: string }
  | { verified: false, text: null, reason: DmFailure }

export interface SealDmInit extends DmHeader {
  text: string
  /** the sender's Ed25519 private key, raw 32 bytes */
  senderSign: Uint8Array
  /** the recipient's X25519 public key, raw or base64 */
  recipientEnc: Uint8Array | string
  /** the sender's own X25519 public key, raw or base64 (so the sender can reread the DM) */
  senderEnc: Uint8Array | string
  /** randomness source; default the system CSPRNG (onion/crypto randomBytes) */
  rng?: (n: number) => Uint8Array
}

/** For test vectors: every random input fixed. Never use with the same keys twice. */
export interface SealDmFixedInit extends Omit<SealDmInit, 'rng'> {
  contentKey: Uint8Array
  /** X25519 private keys of the two ephemeral pairs, raw 32 bytes */
  recipientEphemeral: Uint8Array
  senderEphemeral: Uint8Array
}

export interface OpenDmInit extends DmHeader {
  /** the user opening the DM: must be `to` (a received DM) or `from` (one's own sent DM) */
  me: string
  myEnc: RawKeyPair
  /** the sender's current Ed25519 public key, raw or base64 */
  senderSignPub: Uint8Array | string
}

/** Thrown by sealDm when the message itself cannot be sealed (bad header field, text too long). */
const badDm = (message: string) => new MarshmelloError('MM_ERR_BAD_DM', message)

/** Returns the opaque body (base64url of the envelope) for the server to store. */
export function sealDm (init: SealDmInit): string {
  const rng = init.rng ?? randomBytes
  const draw = (): Buffer => {
    const b = Buffer.from(rng(32))
    if (b.length !== 32) throw new MarshmelloError('MM_ERR_INTERNAL', 'rng returned the wrong length')
    return b
  }
  const fixed = { ...init, contentKey: draw(), recipientEphemeral: draw(), senderEphemeral: draw() }
  try {
    return sealDmDeterministic(fixed)
  } finally {
    fixed.contentKey.fill(0)
    fixed.recipientEphemeral.fill(0)
    fixed.senderEphemeral.fill(0)
  }
}

export function sealDmDeterministic (init: SealDmFixedInit): string {
  const textBytes = Buffer.from(typeof init.text === 'string' ? init.text : '', 'utf8')
  if (typeof init.text !== 'string' || textBytes.toString('utf8') !== init.text) throw badDm('text must be well-formed Unicode')
  if (textBytes.length > MAX_TEXT_BYTES) throw badDm(`text must be at most ${MAX_TEXT_BYTES} bytes, got ${textBytes.length}`)
  let header: Buffer
  try {
    header = encodeHeader({ from: init.from, to: init.to, clientId: init.clientId, sentAt: init.sentAt })
  } catch (err) {
    if (err instanceof EnvelopeFormatError) throw badDm(err.message)
    throw err
  }
  const contentKey = rawKey(init.contentKey, 'content key')
  const signKey = privateKeyObject('Ed25519', init.senderSign)
  const recipientWrap = wrapKey(init.recipientEphemeral, init.recipientEnc, contentKey)
  const senderWrap = wrapKey(init.senderEphemeral, init.senderEnc, contentKey)
  const content = aesGcmSeal(contentKey, textBytes, header)
  contentKey.fill(0)
  textBytes.fill(0)
  const signed = encodeSigned(header, recipientWrap, senderWrap, content)
  const signature = ed25519SignKey(signKey, Buffer.concat([SIG_CONTEXT, signed]))
  return Buffer.concat([signed, signature]).toString('base64url')
}

/**
 * Opens a DM body. Never throws on the body (any bad body is reason 'malformed'); throws
 * MarshmelloError only when the caller's own keys are invalid. On any failure `text` is null.
 */
export function openDm (body: string, init: OpenDmInit): OpenedDm {
  const signPub = publicKeyObject('Ed25519', init.senderSignPub)
  const myPub = rawKey(init.myEnc.publicKey, 'X25519 public key')
  const myPriv = privateKeyObject('X25519', init.myEnc.privateKey)

  const bytes = decodeBody(body)
  if (bytes === undefined) return fail('malformed')
  let parsed: ReturnType<typeof decodeEnvelope>
  try {
    parsed = decodeEnvelope(bytes)
  } catch (err) {
    if (err instanceof EnvelopeFormatError) return fail('malformed')
    throw err
  }
  const { envelope, header, signed } = parsed
  if (!ed25519VerifyKey(signPub, Buffer.concat([SIG_CONTEXT, signed]), envelope.signature)) return fail('bad-signature')

  const h = envelope.header
  if (h.from !== init.from || h.to !== init.to || h.clientId !== init.clientId || h.sentAt !== init.sentAt) return fail('mismatch')
  if (init.me !== h.to && init.me !== h.from) return fail('mismatch')

  let plain: Buffer
  try {
    const wrap = init.me === h.to ? envelope.recipientWrap : envelope.senderWrap
    const contentKey = unwrapKey(wrap, myPriv, myPub)
    plain = aesGcmOpen(contentKey, envelope.content, header)
    contentKey.fill(0)
  } catch {
    return fail('undecryptable')
  }
  try {
    return { verified: true, text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plain) }
  } catch {
    return fail('malformed')
  } finally {
    plain.fill(0)
  }
}

function fail (reason: DmFailure): OpenedDm {
  return { verified: false, text: null, reason }
}

/** Strict, canonical base64url (no padding) within the size bound; undefined when not. */
function decodeBody (body: unknown): Buffer | undefined {
  if (typeof body !== 'string' || body.length === 0) return undefined
  if (body.length > Math.ceil(MAX_ENVELOPE_BYTES * 4 / 3) || !/^[A-Za-z0-9_-]+$/.test(body)) return undefined
  const bytes = Buffer.from(body, 'base64url')
  return bytes.toString('base64url') === body ? bytes : undefined
}

function wrapKey (ephemeralPrivate: Uint8Array, recipientPublic: Uint8Array | string, contentKey: Buffer): Wrap {
  const eph = privateKeyObject('X25519', ephemeralPrivate)
  const ephemeral = rawPublic(eph)
  const recipient = rawKey(recipientPublic, 'X25519 public key')
  let shared: Buffer
  try {
    shared = x25519Agree(eph, publicKeyObject('X25519', recipient))
  } catch {
    throw new MarshmelloError('MM_ERR_BAD_KEY', 'X25519 public key is a low-order point')
  }
  const key = wrapKeyFrom(shared, ephemeral, recipient)
  const sealed = aesGcmSeal(key, contentKey, Buffer.alloc(0))
  key.fill(0)
  return { ephemeral, sealed }
}

function unwrapKey (wrap: Wrap, myPriv: ReturnType<typeof privateKeyObject>, myPub: Buffer): Buffer {
  const shared = x25519Agree(myPriv, publicKeyObject('X25519', wrap.ephemeral))
  const key = wrapKeyFrom(shared, wrap.ephemeral, myPub)
  try {
    return aesGcmOpen(key, wrap.sealed, Buffer.alloc(0))
  } finally {
    key.fill(0)
  }
}

function wrapKeyFrom (shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  const key = hkdfSha256(shared, Buffer.alloc(0), Buffer.concat([WRAP_INFO, ephemeral, recipient]), 32)
  shared.fill(0)
  return key
}

// ciphertext ‖ tag (TAG_BYTES, the primitives' GCM_TAG) under a key used once, so the zero nonce
const aesGcmSeal = (key: Buffer, plain: Buffer, aad: Buffer): Buffer => gcmSeal(key, ZERO_NONCE, plain, aad)

/** throws when authentication fails (the callers turn that into 'undecryptable') */
function aesGcmOpen (key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const plain = sealed.length >= TAG_BYTES ? gcmOpen(key, ZERO_NONCE, sealed, aad) : null
  if (plain === null) throw new MarshmelloError('MM_ERR_BAD_DM', 'DM does not authenticate')
  return plain
}
