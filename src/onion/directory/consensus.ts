// The consensus (docs/PROTOCOL.md §7.2): the live descriptors, signed by the
// server's Ed25519 directory key, with a validity period. Clients and relays pin
// the directory key's fingerprint; relays forward only to hops listed here (P7).
// Each listed relay carries the flags the directory assigned (§7.3: Running, Stable,
// Guard, after Tor's dir-spec §3.4.2); clients take guards only among Guard relays.
import { MarshmelloError } from '../../errors.js'
import { ed25519Fingerprint, ed25519Sign, ed25519Verify } from '../crypto/primitives.js'
import { canonicalJson } from './canonical.js'
import { HEX64, descriptorVerifier, type Descriptor, type DescriptorVerifier } from './descriptor.js'

/**
 * What the directory says about a listed relay (docs/PROTOCOL.md §7.3):
 * Running — answered the directory's last reachability probe;
 * Stable — reachable and listed without a break for the stable time;
 * Guard — Stable, and so for the (longer) guard time: the only relays clients take as guards.
 */
export type RelayFlag = 'Guard' | 'Running' | 'Stable'
export const RELAY_FLAGS: readonly RelayFlag[] = ['Guard', 'Running', 'Stable']

export interface ConsensusBody {
  v: 1
  validAfter: number
  validUntil: number
  /** base64 raw Ed25519 public key */
  directoryKey: string
  relays: Descriptor[]
  /** the final hop (the gateway) */
  server: Descriptor | null
  /** fingerprint → its flags, sorted (a relay absent here has none) */
  flags: Record<string, RelayFlag[]>
}

export interface Consensus extends ConsensusBody {
  signature: string
}

export function signConsensus (body: ConsensusBody, directoryPrivate: Uint8Array): Consensus {
  return { ...body, signature: ed25519Sign(directoryPrivate, Buffer.from(canonicalJson(body))).toString('base64') }
}

export const directoryFingerprint = (pubRaw: Uint8Array): string => ed25519Fingerprint(pubRaw).toString('hex')

const bad = (msg: string) => new MarshmelloError('MM_ERR_CONSENSUS', msg)

/**
 * Verifies a consensus against the pinned directory key fingerprint (hex) at time
 * `now`: key, signature, validity period, and every descriptor (self-signed, not
 * expired: an expired one is dropped, not fatal). Throws MM_ERR_CONSENSUS.
 * Descriptors go through `descriptors` (the process' shared cache by default), so
 * re-verifying the same consensus every few seconds costs one lookup per relay.
 */
export function verifyConsensus (doc: unknown, pinnedFingerprint: string, now: number, descriptors: DescriptorVerifier = descriptorVerifier): Consensus {
  if (!doc || typeof doc !== 'object') throw bad('consensus must be a JSON object')
  const c = doc as Consensus
  if (c.v !== 1) throw bad('consensus version must be 1')
  if (typeof c.directoryKey !== 'string' || typeof c.signature !== 'string') throw bad('consensus lacks its key or signature')
  const key = Buffer.from(c.directoryKey, 'base64')
  if (key.length !== 32 || directoryFingerprint(key) !== pinnedFingerprint.toLowerCase()) throw bad('consensus is signed by a directory key other than the pinned one')
  const { signature, ...body } = c
  if (!ed25519Verify(key, Buffer.from(canonicalJson(body)), Buffer.from(signature, 'base64'))) throw bad('consensus signature does not verify')
  if (!Number.isSafeInteger(c.validAfter) || !Number.isSafeInteger(c.validUntil)) throw bad('consensus validity must be integers')
  if (now < c.validAfter - 60_000) throw bad('consensus is not valid yet')
  if (now > c.validUntil) throw bad('consensus has expired')
  if (!Array.isArray(c.relays) || c.relays.length > 10_000) throw bad('consensus relays must be a list')
  const relays: Descriptor[] = []
  for (const r of c.relays) {
    try {
      const d = descriptors.verify(r, now)
      if (d.role === 'relay') relays.push(d)
    } catch { /* an expired or broken descriptor is left out */ }
  }
  const server = c.server ? descriptors.verify(c.server, now) : null
  if (server && server.role !== 'server') throw bad('consensus server entry must have role server')
  return { ...c, relays, server, flags: verifyFlags(c.flags) }
}

function verifyFlags (f: unknown): Record<string, RelayFlag[]> {
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
