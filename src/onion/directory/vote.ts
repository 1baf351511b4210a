// Votes and the consensus method (docs/PROTOCOL.md §7.8), after Tor's dir-spec §3.8
// "Computing a consensus from a set of votes". Each directory authority publishes a
// signed vote: the relays it finds Running (reachable at their descriptor's address),
// each with the flags it assigns, and the final hop it knows. The consensus method is a
// pure, deterministic function of the set of votes, so every honest authority holding
// the same votes computes byte-identical bodies and signs the same bytes:
//  - a relay is listed when more than half of the configured authorities list it (not
//    of the votes at hand: two of three authorities down, nothing is listed);
//  - each flag when more than half of the authorities that list the relay give it
//    (dir-spec §3.8: "a router has a flag … if more than half of the authorities that
//    list it assign it");
//  - of the descriptors the listing votes carry for one relay, the one most of them
//    carry, then the newest `published`, then the lowest digest (dir-spec §3.8: the entry
//    in the most votes, ties to the more recently published, then the smaller digest);
//  - the final hop likewise, by its fingerprint;
//  - validAfter and validUntil: the lower median of the votes' own (dir-spec §3.8 takes
//    "the median of the respective values from all the votes"), so a hostile minority
//    cannot move them outside the honest votes' range.
// A hostile authority that lists only its own relays is outvoted: alone, its vote lists
// nothing.
import { MarshmelloError } from '../../errors.js'
import { ed25519Sign, ed25519Verify, sha256 } from '../crypto/primitives.js'
import { canonicalJson } from './canonical.js'
import { MAX_AUTHORITIES, MAX_LISTED, RELAY_FLAGS, directoryFingerprint, majorityOf, verifyFlags, type ConsensusBody, type KeyPair, type RelayFlag } from './consensus.js'
import { descriptorVerifier, type Descriptor, type DescriptorVerifier } from './descriptor.js'

/** the consensus method this code computes (a new rule gets a new number, as Tor's methods) */
export const CONSENSUS_METHOD = 1

export interface VoteBody {
  v: 1
  /** base64 raw Ed25519 key of the authority that votes */
  authority: string
  /** the start of the voting period it was made in (period-aligned, so honest votes agree) */
  validAfter: number
  validUntil: number
  /** the Running relays, sorted by fingerprint */
  relays: Descriptor[]
  /** fingerprint → the flags this authority assigns, for each relay it lists */
  flags: Record<string, RelayFlag[]>
  /** the final hop this authority knows, or null */
  server: Descriptor | null
}

export interface Vote extends VoteBody {
  signature: string
}

/** a vote's signature can never pass for a consensus one (their bytes differ from the first byte) */
const VOTE_CONTEXT = Buffer.from('marshmello directory vote v1\n')
const voteBytes = (b: VoteBody): Buffer => {
  const { v, authority, validAfter, validUntil, relays, flags, server } = b
  return Buffer.concat([VOTE_CONTEXT, Buffer.from(canonicalJson({ v, authority, validAfter, validUntil, relays, flags, server }))])
}

export function signVote (body: Omit<VoteBody, 'authority' | 'v'>, key: KeyPair): Vote {
  const b: VoteBody = { v: 1, authority: Buffer.from(key.publicKey).toString('base64'), ...body }
  return { ...b, signature: ed25519Sign(key.privateKey, voteBytes(b)).toString('base64') }
}

/** hex SHA-256 of a vote's signed bytes: peers fetch a vote again only when this changes */
export const voteDigest = (v: VoteBody): string => sha256(voteBytes(v)).toString('hex')

const bad = (msg: string) => new MarshmelloError('MM_ERR_VOTE', msg)

/**
 * Checks a vote from the authority `fingerprint` at time `now`: shape, bounds (at most
 * MAX_LISTED relays), the authority's signature, and every descriptor (a broken or
 * expired one is left out with its flags; a relay listed twice keeps its first).
 * Throws MM_ERR_VOTE.
 */
export function verifyVote (doc: unknown, fingerprint: string, now: number, descriptors: DescriptorVerifier = descriptorVerifier): Vote {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad('a vote must be a JSON object')
  const x = doc as Vote
  if (x.v !== 1) throw bad('vote version must be 1')
  if (typeof x.authority !== 'string' || typeof x.signature !== 'string' || x.authority.length > 64 || x.signature.length > 128) throw bad('a vote lacks its authority key or signature')
  const key = Buffer.from(x.authority, 'base64')
  if (key.length !== 32 || directoryFingerprint(key) !== fingerprint.toLowerCase()) throw bad('the vote is not by the expected authority')
  if (!Number.isSafeInteger(x.validAfter) || !Number.isSafeInteger(x.validUntil) || x.validUntil < x.validAfter) throw bad('vote validity must be integers, validUntil not before validAfter')
  if (!Array.isArray(x.relays) || x.relays.length > MAX_LISTED) throw bad(`a vote lists at most ${MAX_LISTED} relays`)
  let bytes: Buffer
  try { bytes = voteBytes(x) } catch (err) { throw bad(`vote ${(err as Error).message}`) }
  if (!ed25519Verify(key, bytes, Buffer.from(x.signature, 'base64'))) throw bad('vote signature does not verify')
  let flags: Record<string, RelayFlag[]>
  try { flags = verifyFlags(x.flags) } catch (err) { throw bad(`vote ${(err as Error).message}`) }
  const relays: Descriptor[] = []
  const seen = new Set<string>()
  for (const r of x.relays) {
    try {
      const d = descriptors.verify(r, now)
      if (d.role !== 'relay' || seen.has(d.fingerprint)) continue
      seen.add(d.fingerprint)
      relays.push(d)
    } catch { /* left out */ }
  }
  let server: Descriptor | null = null
  try {
    const s = x.server ? descriptors.verify(x.server, now) : null
    if (s && s.role === 'server') server = s
  } catch { /* an expired final hop: this vote names none */ }
  return { v: 1, authority: x.authority, validAfter: x.validAfter, validUntil: x.validUntil, relays, flags: Object.fromEntries(relays.map((d) => [d.fingerprint, flags[d.fingerprint] ?? []])), server, signature: x.signature }
}

const digestOf = (d: Descriptor): string => sha256(Buffer.from(canonicalJson(d))).toString('hex')

/** most carried, then newest published, then lowest digest: one descriptor, whatever order the votes came in */
function chooseDescriptor (carried: Descriptor[]): Descriptor {
  const by = new Map<string, { d: Descriptor, n: number }>()
  for (const d of carried) {
    const k = digestOf(d)
    const e = by.get(k)
    if (e) e.n++
    else by.set(k, { d, n: 1 })
  }
  const best = [...by.entries()].sort(([ka, a], [kb, b]) => b.n - a.n || b.d.published - a.d.published || (ka < kb ? -1 : ka > kb ? 1 : 0))[0]!
  return best[1].d
}

/** the lower median: with an honest majority, a value some honest vote holds or lies between two */
function lowerMedian (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)]!
}

/**
 * The consensus method (CONSENSUS_METHOD; the rules in the header): `votes` are verified
 * votes (at most one per authority: a second one by the same key is ignored, the one with
 * the later validAfter, then the lower digest, kept), `authorities` is the number of
 * configured authorities (n: a relay needs more than n/2 votes). Pure: any order of the
 * same votes gives the same body. Throws MM_ERR_VOTE for no votes or n out of range.
 */
export function computeConsensus (votes: readonly Vote[], authorities: number): ConsensusBody {
  if (!Number.isSafeInteger(authorities) || authorities < 1 || authorities > MAX_AUTHORITIES) throw bad(`between 1 and ${MAX_AUTHORITIES} authorities`)
  const one = new Map<string, Vote>()
  for (const v of votes) {
    const held = one.get(v.authority)
    if (!held || v.validAfter > held.validAfter || (v.validAfter === held.validAfter && voteDigest(v) < voteDigest(held))) one.set(v.authority, v)
  }
  const used = [...one.values()]
  if (used.length === 0) throw bad('a consensus needs at least one vote')
  if (used.length > authorities) throw bad('more votes than authorities')
  const need = majorityOf(authorities)

  const listings = new Map<string, { d: Descriptor, flags: RelayFlag[] }[]>()
  for (const v of used) {
    for (const d of v.relays) {
      const l = listings.get(d.fingerprint) ?? []
      l.push({ d, flags: v.flags[d.fingerprint] ?? [] })
      listings.set(d.fingerprint, l)
    }
  }
  const relays: Descriptor[] = []
  const flags: Record<string, RelayFlag[]> = {}
  for (const [fp, l] of listings) {
    if (l.length < need) continue
    relays.push(chooseDescriptor(l.map((x) => x.d)))
    flags[fp] = RELAY_FLAGS.filter((f) => 2 * l.filter((x) => x.flags.includes(f)).length > l.length)
  }
  relays.sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1))

  const servers = new Map<string, Descriptor[]>()
  for (const v of used) if (v.server) servers.set(v.server.fingerprint, [...(servers.get(v.server.fingerprint) ?? []), v.server])
  const backed = [...servers.entries()].filter(([, l]) => l.length >= need).sort(([a], [b]) => (a < b ? -1 : 1))
  const server = backed.length > 0 ? chooseDescriptor(backed[0]![1]) : null

  const validAfter = lowerMedian(used.map((v) => v.validAfter))
  const validUntil = Math.max(validAfter, lowerMedian(used.map((v) => v.validUntil)))
  const sortedFlags = Object.fromEntries(relays.map((d) => [d.fingerprint, flags[d.fingerprint]!]))
  return { v: 2, method: CONSENSUS_METHOD, validAfter, validUntil, relays, server, flags: sortedFlags }
}
