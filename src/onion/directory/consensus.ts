// The consensus (docs/PROTOCOL.md §7.2): the Running relays and the final hop, with a
// validity period, signed by the directory authorities (§7.8). Every authority that
// computed the same body signs that same canonical body; the document carries the list
// of {authority key, signature}. Clients and relays pin a set of authority key
// fingerprints and a threshold (a majority by default): a consensus with fewer valid
// signatures by distinct pinned authorities is refused whatever it lists; signatures by
// unknown keys are ignored and one authority's counts once (a Tor client likewise needs
// signatures by more than half of the authorities it knows, dir-spec §5). Relays forward only to
// hops listed here (P7). Each listed relay carries the flags the authorities assigned
// (§7.5: Running, Stable, Guard, after Tor's dir-spec §3.4.2); clients take guards only
// among Guard relays.
import { MarshmelloError } from '../../errors.js'
import { ed25519Fingerprint, ed25519Sign, ed25519Verify, sha256 } from '../crypto/primitives.js'
import { canonicalJson } from './canonical.js'
import { HEX64, descriptorVerifier, type Descriptor, type DescriptorVerifier } from './descriptor.js'

/**
 * What the directory says about a listed relay (docs/PROTOCOL.md §7.5):
 * Running — answered the directory's last reachability probe;
 * Stable — reachable and listed without a break for the stable time;
 * Guard — Stable, and so for the (longer) guard time: the only relays clients take as guards.
 */
export type RelayFlag = 'Guard' | 'Running' | 'Stable'
export const RELAY_FLAGS: readonly RelayFlag[] = ['Guard', 'Running', 'Stable']

/** most authorities one pin, one vote set or one signature list may hold (Tor runs 9) */
export const MAX_AUTHORITIES = 16
/** most relays a consensus or a vote lists */
export const MAX_LISTED = 10_000

export interface ConsensusBody {
  v: 2
  /** the consensus method that computed it from the votes (vote.ts; 1 for a document one key made alone) */
  method: number
  validAfter: number
  validUntil: number
  relays: Descriptor[]
  /** the final hop (the gateway) */
  server: Descriptor | null
  /** fingerprint → its flags, sorted (a relay absent here has none) */
  flags: Record<string, RelayFlag[]>
}

/** one authority's signature over canonicalJson(body) */
export interface AuthoritySignature {
  /** base64 raw Ed25519 public key */
  key: string
  /** base64 Ed25519 signature */
  signature: string
}

export interface Consensus extends ConsensusBody {
  signatures: AuthoritySignature[]
}

export interface KeyPair { privateKey: Uint8Array, publicKey: Uint8Array }

/** the bytes every authority signs: the whole document but its signature list (a field added on the way breaks every signature) */
export const consensusBodyBytes = (body: ConsensusBody | Consensus): Buffer => {
  const { signatures: _, ...rest } = body as Consensus
  return Buffer.from(canonicalJson(rest))
}

/** hex SHA-256 of the signed body: what authorities compare before they trade signatures */
export const consensusDigest = (body: ConsensusBody): string => sha256(consensusBodyBytes(body)).toString('hex')

/** one authority's signature over `body` */
export function signBody (body: ConsensusBody, key: KeyPair): AuthoritySignature {
  return { key: Buffer.from(key.publicKey).toString('base64'), signature: ed25519Sign(key.privateKey, consensusBodyBytes(body)).toString('base64') }
}

/** `body` signed by each of `keys` (one key: a single-authority consensus, as a devnet's file or a test signs) */
export function signConsensus (body: ConsensusBody, ...keys: KeyPair[]): Consensus {
  return { ...body, signatures: keys.map((k) => signBody(body, k)) }
}

export const directoryFingerprint = (pubRaw: Uint8Array): string => ed25519Fingerprint(pubRaw).toString('hex')

const bad = (msg: string) => new MarshmelloError('MM_ERR_CONSENSUS', msg)

/** which authorities a holder trusts, and how many of them must sign (PROTOCOL §7.8) */
export interface AuthorityPin {
  /** fingerprints (hex SHA-256 of the Ed25519 key's SPKI), lowercase, distinct; the first is the server's */
  keys: string[]
  threshold: number
}

/** more than half: Tor's rule for a consensus (dir-spec §3.10.3) and the default threshold */
export const majorityOf = (n: number): number => Math.floor(n / 2) + 1

/**
 * `--directory-key FP[,FP…]` and `--directory-threshold K` as a pin. Throws MM_ERR_CONFIG
 * for a fingerprint that is not 64 hex characters, a repeated one, more than
 * MAX_AUTHORITIES, or a threshold outside 1…n (default: a majority of n).
 */
export function authorityPin (keys: string | readonly string[], threshold?: number): AuthorityPin {
  const list = (typeof keys === 'string' ? keys.split(',') : [...keys]).map((k) => k.trim().toLowerCase()).filter((k) => k !== '')
  if (list.length === 0) throw new MarshmelloError('MM_ERR_CONFIG', 'pin at least one directory authority key (64 hex characters)')
  if (list.length > MAX_AUTHORITIES) throw new MarshmelloError('MM_ERR_CONFIG', `at most ${MAX_AUTHORITIES} directory authority keys may be pinned`)
  for (const k of list) if (!HEX64.test(k)) throw new MarshmelloError('MM_ERR_CONFIG', 'a directory key must be 64 hex characters (the fingerprint the server printed)')
  if (new Set(list).size !== list.length) throw new MarshmelloError('MM_ERR_CONFIG', 'a directory key is pinned twice')
  const t = threshold ?? majorityOf(list.length)
  if (!Number.isSafeInteger(t) || t < 1 || t > list.length) throw new MarshmelloError('MM_ERR_CONFIG', `the directory threshold must be an integer from 1 to ${list.length} (the pinned keys)`)
  return { keys: list, threshold: t }
}

/** a pin as given (a comma-separated string: majority threshold) or already parsed */
export const toPin = (p: string | AuthorityPin): AuthorityPin => typeof p === 'string' ? authorityPin(p) : p

/** the server's own authority key (the first pinned): the root of sealed sender's server certificate (PROTOCOL §12.2) */
export const serverAuthority = (p: string | AuthorityPin): string => toPin(p).keys[0]!

/**
 * The pinned authorities whose valid signature over `body` is in `signatures`: each
 * counted once, unknown keys and bad signatures ignored. Throws MM_ERR_CONSENSUS for a
 * list that is not one, or longer than MAX_AUTHORITIES.
 */
export function validSigners (body: ConsensusBody, signatures: unknown, pinned: readonly string[]): Set<string> {
  if (!Array.isArray(signatures) || signatures.length > MAX_AUTHORITIES) throw bad(`consensus signatures must be a list of at most ${MAX_AUTHORITIES}`)
  const want = new Set(pinned)
  const ok = new Set<string>()
  let bytes: Buffer | null = null
  for (const s of signatures as unknown[]) {
    const e = s as Partial<AuthoritySignature> | null
    if (!e || typeof e !== 'object' || typeof e.key !== 'string' || typeof e.signature !== 'string' || e.key.length > 64 || e.signature.length > 128) continue
    const key = Buffer.from(e.key, 'base64')
    if (key.length !== 32) continue
    const fp = directoryFingerprint(key)
    if (!want.has(fp) || ok.has(fp)) continue // unknown key, or one already counted
    bytes ??= consensusBodyBytes(body)
    const sig = Buffer.from(e.signature, 'base64')
    if (sig.length === 64 && ed25519Verify(key, bytes, sig)) ok.add(fp)
  }
  return ok
}

/**
 * Verifies a consensus against the pinned authorities at time `now`: at least
 * `threshold` valid signatures by distinct pinned authorities over the canonical body
 * (else MM_ERR_CONSENSUS_THRESHOLD, whatever it lists), the validity period, and every
 * descriptor (self-signed, not expired: an expired one is dropped, not fatal). Throws
 * MM_ERR_CONSENSUS for anything malformed. `pin` is a comma-separated list of
 * fingerprints (threshold: a majority) or an AuthorityPin. Descriptors go through
 * `descriptors` (the process' shared cache by default), so re-verifying the same
 * consensus every few seconds costs one lookup per relay.
 */
export function verifyConsensus (doc: unknown, pin: string | AuthorityPin, now: number, descriptors: DescriptorVerifier = descriptorVerifier): Consensus {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad('consensus must be a JSON object')
  const c = doc as Consensus
  if (c.v !== 2) throw bad('consensus version must be 2 (signed by a set of authorities)')
  if (!Number.isSafeInteger(c.method) || c.method < 1) throw bad('consensus method must be a positive integer')
  if (!Number.isSafeInteger(c.validAfter) || !Number.isSafeInteger(c.validUntil)) throw bad('consensus validity must be integers')
  if (!Array.isArray(c.relays) || c.relays.length > MAX_LISTED) throw bad('consensus relays must be a list')
  const p = toPin(pin)
  let signers: Set<string>
  try {
    signers = validSigners(c, c.signatures, p.keys)
  } catch (err) {
    if (err instanceof RangeError) throw bad(`consensus ${err.message}`) // nested too deep to be canonical
    throw err
  }
  if (signers.size < p.threshold) {
    throw new MarshmelloError('MM_ERR_CONSENSUS_THRESHOLD', `consensus is signed by ${signers.size} of the ${p.keys.length} pinned directory authorities; ${p.threshold} must sign`)
  }
  if (now < c.validAfter - 60_000) throw bad('consensus is not valid yet')
  if (now > c.validUntil) throw bad('consensus has expired')
  const relays: Descriptor[] = []
  for (const r of c.relays) {
    try {
      const d = descriptors.verify(r, now)
      if (d.role === 'relay') relays.push(d)
    } catch { /* an expired or broken descriptor is left out */ }
  }
  const server = c.server ? descriptors.verify(c.server, now) : null
  if (server && server.role !== 'server') throw bad('consensus server entry must have role server')
  return { v: 2, method: c.method, validAfter: c.validAfter, validUntil: c.validUntil, relays, server, flags: verifyFlags(c.flags), signatures: c.signatures }
}

/** a fingerprint → flag names map, unknown names left out; throws MM_ERR_CONSENSUS for anything else */
export function verifyFlags (f: unknown): Record<string, RelayFlag[]> {
  if (!f || typeof f !== 'object' || Array.isArray(f)) throw bad('consensus flags must be an object of fingerprint → flags')
  const out: Record<string, RelayFlag[]> = {}
  const entries = Object.entries(f as Record<string, unknown>)
  if (entries.length > 10_000) throw bad('consensus flags name more relays than a consensus lists')
  for (const [fp, list] of entries) {
    if (!HEX64.test(fp) || !Array.isArray(list) || list.length > 16 || !list.every((x) => typeof x === 'string')) throw bad('consensus flags must map fingerprints to lists of flag names')
    // unknown names are left out (a later version may add flags), known ones kept
    out[fp] = RELAY_FLAGS.filter((k) => list.includes(k))
  }
  return out
}

/** the relay carries `flag` in this consensus */
export const hasFlag = (c: Pick<Consensus, 'flags'>, fingerprint: string, flag: RelayFlag): boolean =>
  c.flags?.[fingerprint]?.includes(flag) ?? false

/** the listed relays with the Guard flag: the only ones a client may take as guards (guard-spec §4.1 {GUARDS}) */
export const guardRelays = (c: Consensus): Descriptor[] => c.relays.filter((d) => hasFlag(c, d.fingerprint, 'Guard'))

/** every flag for each of `relays`: consensuses a devnet or a test signs itself (everything reachable, trusted from the start) */
export const allFlags = (relays: readonly Descriptor[]): Record<string, RelayFlag[]> =>
  Object.fromEntries(relays.map((d) => [d.fingerprint, [...RELAY_FLAGS]]))

/** every hop a relay may forward to: listed relays and the server, by fingerprint */
export function listedHops (c: Consensus): Map<string, Descriptor> {
  const m = new Map<string, Descriptor>()
  for (const r of c.relays) m.set(r.fingerprint, r)
  if (c.server) m.set(c.server.fingerprint, c.server)
  return m
}
