// A directory authority (docs/ARCHITECTURE.md §7, PROTOCOL §7.8): relays post descriptors
// signed with their identity keys to every authority (and re-post them as heartbeats);
// stale ones drop out. Each authority publishes a signed vote (the relays it finds
// Running, with its flags, and the final hop), fetches its peers' votes, computes the
// consensus from the freshest vote of each authority with the deterministic consensus
// method (src/onion/directory/vote.ts), signs that body with its Ed25519 directory key,
// and collects the peers' signatures over the same body digest (a peer signs only a body
// it computed itself). It serves the newest consensus signed by a majority of the
// authorities. Votes are period-aligned (validAfter = the start of the voting period)
// and are remade only when the Running set, a flag or the period changes, so honest
// authorities holding the same votes compute byte-identical bodies. One authority alone
// (no peers) signs its own vote's consensus at once, as the single directory did. The
// final hop's own descriptor is either given (one process), accepted only from the
// pinned gateway fingerprint (split mode), or taken from a peer's vote when it carries
// that pinned fingerprint (a peer of the server's authority).
// Address policy (PROTOCOL §7.1): IP literals only, public addresses only unless the
// directory serves a private test network, at most MAX_PER_ADDRESS relays per IP
// (Tor's AuthDirMaxServersPerAddr), checked before the reachability probe connects.
import type { FastifyInstance } from 'fastify'
import { LRUCache } from 'lru-cache'
import { MarshmelloError } from '../../errors.js'
import { MAX_AUTHORITIES, RELAY_FLAGS, consensusDigest, directoryFingerprint, majorityOf, signBody, validSigners, type AuthoritySignature, type Consensus, type ConsensusBody, type RelayFlag } from '../../onion/directory/consensus.js'
import { computeConsensus, signVote, verifyVote, voteDigest, type Vote } from '../../onion/directory/vote.js'
import { fetchDocument } from '../common/signed-fetch.js'
import { verifyDescriptor, type Descriptor } from '../../onion/directory/descriptor.js'
import { ipKey } from '../../onion/directory/address.js'
import { checkListable } from '../../onion/directory/families.js'
import { TokenBuckets } from '../common/limits.js'
import { cachedProbe, probeHop, type Probe } from './reachability.js'

export interface DirectoryInit {
  key: { privateKey: Buffer, publicKey: Buffer }
  /** the final hop's descriptor when it runs in this process */
  serverDescriptor?: () => Descriptor
  /** split mode: the only fingerprint allowed to post a `server` descriptor */
  gatewayFingerprint?: string
  /** a relay not heard from for this long leaves the consensus (default 30 s) */
  staleMs?: number
  /** how long a consensus stays valid (default 1 h) */
  validityMs?: number
  maxRelays?: number
  /**
   * a private test network (a devnet, the tests, namespaces): loopback, private and
   * link-local addresses may be listed, and the per-address limit defaults to none
   */
  privateNetwork?: boolean
  /** most live relays listed at one IP address (default MAX_PER_ADDRESS; 0 = no limit) */
  maxPerAddress?: number
  /** a relay is Stable once reachable and listed without a break this long (default STABLE_AFTER_MS; 0 in a private network) */
  stableAfterMs?: number
  /** a Stable relay is a Guard once reachable and listed without a break this long (default GUARD_AFTER_MS; 0 in a private network) */
  guardAfterMs?: number
  /** how often each listed relay is probed again (default REPROBE_MS; 10 s in a private network) */
  reprobeMs?: number
  /** the other authorities (their base URL and directory key fingerprint); none: this one alone signs */
  peers?: AuthorityPeer[]
  /** the voting period: votes' validAfter is aligned to it and votes are remade at least this often (default VOTE_PERIOD_MS) */
  votePeriodMs?: number
  now?: () => number
}

export interface AuthorityPeer { url: string, fingerprint: string }

/** votes are remade (and the consensus re-signed) at least this often, as the single directory re-signed every 10 s */
export const VOTE_PERIOD_MS = 10_000
/** a peer's vote older than this many periods is no longer counted (the peer is down or cut off) */
const VOTE_STALE_PERIODS = 3
/** a peer that did not answer this many rounds in a row: its vote no longer counts */
export const PEER_DOWN_ROUNDS = 3

/** what an authority tells its peers (GET /v1/directory/signatures): its vote's digest and the body it signs */
export interface AuthorityState {
  voteDigest: string
  /** hex SHA-256 of the consensus body it computed, or null before it computed one */
  digest: string | null
  signatures: AuthoritySignature[]
}

/**
 * Flag times (PROTOCOL §7.3). Tor's dir-spec §3.4.2 gives Stable to a relay whose
 * weighted MTBF is at least the median or 5 days (MTBF_TO_GUARANTEE_STABLE), and Guard
 * to a Stable relay that is "familiar" (known for 8 days: TIME_KNOWN_TO_GUARANTEE_FAMILIAR)
 * with a weighted fractional uptime of at least 98 %. This directory has one
 * measurement, continuous reachability since its last failed probe, so it asks that
 * run to last 5 days for Stable and 8 days for Guard: a relay listed a minute ago
 * (a fresh Sybil) can be no client's guard, and one failed probe starts it over.
 */
export const STABLE_AFTER_MS = 5 * 86_400_000
export const GUARD_AFTER_MS = 8 * 86_400_000
/** each relay is probed again this often (Tor's authorities test every router once per 1280 s: REACHABILITY_TEST_CYCLE_PERIOD) */
export const REPROBE_MS = 1280_000
/** most reachability probes in flight at once */
const PROBES_IN_FLIGHT = 16

/** the same relay, the same listing: only the heartbeat fields (published, expires, signature) differ */
function sameContent (a: Descriptor, b: Descriptor): boolean {
  const strip = ({ published: _p, expires: _e, signature: _s, ...rest }: Descriptor) => rest
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b))
}

/** at most this many relays per IP address outside a private network (Tor's AuthDirMaxServersPerAddr default, dir-spec §3.4.2) */
export const MAX_PER_ADDRESS = 2

export class Directory {
  /**
   * `since`: start of the current unbroken run (listed and answering every probe);
   * null while its last probe failed (not Running, so not in the consensus).
   * `probedAt`: when its last probe started.
   */
  private readonly relays = new Map<string, { d: Descriptor, seen: number, ipKey: string, since: number | null, probedAt: number, probing: boolean }>()
  private gateway: { d: Descriptor, seen: number } | null = null
  /** newest `published` accepted per fingerprint, kept after the hop is pruned: a copy of a listed descriptor is no heartbeat */
  private readonly lastPublished = new Map<string, { published: number, expires: number }>()
  /** this authority's own vote; null when the Running set, a flag or the final hop changed */
  private cached: { text: string, doc: Vote, digest: string, period: number, flagsUntil: number } | null = null
  /** each peer's freshest verified vote, by fingerprint */
  private readonly peerVotes = new Map<string, { doc: Vote, digest: string }>()
  /** rounds in a row each peer did not answer */
  private readonly peerFailures = new Map<string, number>()
  /** the body computed from the votes now held, with the signatures collected for it */
  private pending: { body: ConsensusBody, digest: string, sigs: Map<string, AuthoritySignature>, votes: string } | null = null
  /** the newest consensus signed by at least `threshold` authorities: what is served */
  private published: { text: string, doc: Consensus, digest: string, signers: number } | null = null
  readonly fingerprint: string
  private readonly now: () => number
  /** every authority's fingerprint, this one's first */
  readonly authorities: string[]
  /** signatures a consensus needs before it is served: a majority of the authorities */
  readonly threshold: number

  constructor (private readonly init: DirectoryInit) {
    this.fingerprint = directoryFingerprint(init.key.publicKey)
    this.now = init.now ?? Date.now
    const peers = init.peers ?? []
    this.authorities = [this.fingerprint, ...peers.map((p) => p.fingerprint.toLowerCase())]
    if (this.authorities.length > MAX_AUTHORITIES || new Set(this.authorities).size !== this.authorities.length) {
      throw new MarshmelloError('MM_ERR_CONFIG', `authority peers must be distinct fingerprints, other than this authority's, at most ${MAX_AUTHORITIES - 1}`)
    }
    this.threshold = majorityOf(this.authorities.length)
  }

  get peers (): readonly AuthorityPeer[] { return this.init.peers ?? [] }

  /**
   * The address rules, before anything connects to the descriptor's address (the
   * reachability probe): MM_ERR_ADDRESS_PRIVATE, MM_ERR_ADDRESS_TAKEN (host:port of
   * another live relay), MM_ERR_ADDRESS_LIMIT (the IP already lists its maximum).
   * `d` is a verified descriptor.
   */
  admissible (d: Descriptor): void {
    const now = this.now()
    this.prune(now)
    const ip = checkListable(d.host, this.init.privateNetwork === true)
    if (d.role !== 'relay') return
    const key = ipKey(ip)
    const max = this.init.maxPerAddress ?? (this.init.privateNetwork === true ? 0 : MAX_PER_ADDRESS)
    let atIp = 0
    for (const [fp, r] of this.relays) {
      if (fp === d.fingerprint || r.ipKey !== key) continue
      // one relay per address: a new identity at a listed address:port is refused while the other is live
      if (r.d.port === d.port) throw new MarshmelloError('MM_ERR_ADDRESS_TAKEN', `${d.host}:${d.port} is already listed for another relay`)
      atIp++
    }
    if (max > 0 && atIp >= max) {
      throw new MarshmelloError('MM_ERR_ADDRESS_LIMIT', `${d.host} already lists ${atIp} relay(s), the most one address may list here`)
    }
  }

  /** Thrown MM_ERR_DESCRIPTOR for a bad or unacceptable descriptor; the address rules as admissible(). */
  accept (doc: unknown): Descriptor {
    return this.admit(verifyDescriptor(doc, this.now()))
  }

  /** accept()'s rules after the signature check: `d` must come from verifyDescriptor */
  admit (d: Descriptor): Descriptor {
    const now = this.now()
    this.prune(now) // stale hops hold neither an address nor a slot
    this.admissible(d)
    const last = this.lastPublished.get(d.fingerprint)
    if (last && last.published >= d.published) {
      // descriptors are public (the consensus lists them): only a live hop signs a newer one
      throw new MarshmelloError('MM_ERR_DESCRIPTOR_STALE', 'a descriptor no newer than the last one from this hop: heartbeats must be freshly signed')
    }
    if (d.role === 'server') {
      if (!this.init.gatewayFingerprint || d.fingerprint !== this.init.gatewayFingerprint) {
        throw new MarshmelloError('MM_ERR_DESCRIPTOR_REFUSED', 'this directory does not accept a server descriptor with that fingerprint')
      }
      this.gateway = { d, seen: now }
    } else {
      if (!this.relays.has(d.fingerprint) && this.relays.size >= (this.init.maxRelays ?? 5000)) {
        throw new MarshmelloError('MM_ERR_BUSY', 'directory is full')
      }
      const old = this.relays.get(d.fingerprint)
      // a new listing (or a new address) was just probed by the routes: its run starts now
      const moved = old !== undefined && (old.ipKey !== ipKey(checkListable(d.host, true)) || old.d.port !== d.port)
      const run = old && !moved ? { since: old.since, probedAt: old.probedAt, probing: old.probing } : { since: now, probedAt: now, probing: false }
      this.relays.set(d.fingerprint, { d, seen: now, ipKey: ipKey(checkListable(d.host, true)), ...run })
      // a heartbeat (same relay, same address) waits for the next period's vote: votes that
      // changed with every heartbeat would rarely agree across authorities
      if (old && !moved && !sameContent(old.d, d)) this.cached = null
      if (!old || moved) this.cached = null
      this.lastPublished.delete(d.fingerprint)
      this.lastPublished.set(d.fingerprint, { published: d.published, expires: d.expires })
      this.boundPublished()
      return d
    }
    this.lastPublished.delete(d.fingerprint)
    this.lastPublished.set(d.fingerprint, { published: d.published, expires: d.expires })
    this.boundPublished()
    this.cached = null
    return d
  }

  /** bounded: oldest first (a forgotten entry's copies could be replayed until they expire) */
  private boundPublished (): void {
    for (const fp of this.lastPublished.keys()) {
      if (this.lastPublished.size <= 2 * (this.init.maxRelays ?? 5000) + 1) break
      this.lastPublished.delete(fp)
    }
  }

  private prune (now: number): void {
    const stale = this.init.staleMs ?? 30_000
    for (const [fp, r] of this.relays) {
      if (r.seen < now - stale || r.d.expires <= now) { this.relays.delete(fp); this.cached = null }
    }
    if (this.gateway && (this.gateway.seen < now - stale || this.gateway.d.expires <= now)) { this.gateway = null; this.cached = null }
    for (const [fp, l] of this.lastPublished) if (l.expires <= now) this.lastPublished.delete(fp)
  }

  private get stableAfter (): number { return this.init.stableAfterMs ?? (this.privateNetwork ? 0 : STABLE_AFTER_MS) }
  private get guardAfter (): number { return Math.max(this.stableAfter, this.init.guardAfterMs ?? (this.privateNetwork ? 0 : GUARD_AFTER_MS)) }
  private get reprobe (): number { return this.init.reprobeMs ?? (this.privateNetwork ? 10_000 : REPROBE_MS) }

  /** a relay's flags now (dir-spec §3.4.2, as STABLE_AFTER_MS says); none when its last probe failed */
  private flagsOf (r: { since: number | null }, now: number): RelayFlag[] {
    if (r.since === null) return []
    const up = now - r.since
    return RELAY_FLAGS.filter((f) => f === 'Running' || (f === 'Stable' && up >= this.stableAfter) || (f === 'Guard' && up >= this.guardAfter))
  }

  /** the next moment a listed relay gains a flag (the consensus is re-signed then) */
  private nextFlagChange (now: number): number {
    let next = Infinity
    for (const r of this.relays.values()) {
      if (r.since === null) continue
      for (const t of [r.since + this.stableAfter, r.since + this.guardAfter]) if (t > now && t < next) next = t
    }
    return next
  }

  /**
   * Relays due for their periodic reachability probe (at most `max`), marked as being
   * probed: the caller probes each and reports with probed().
   */
  dueProbes (max = PROBES_IN_FLIGHT): Descriptor[] {
    const now = this.now()
    this.prune(now)
    let inFlight = 0
    for (const r of this.relays.values()) if (r.probing) inFlight++
    const out: Descriptor[] = []
    for (const r of this.relays.values()) {
      if (out.length + inFlight >= max) break
      if (r.probing || now - r.probedAt < this.reprobe) continue
      r.probing = true
      r.probedAt = now
      out.push(r.d)
    }
    return out
  }

  /**
   * The outcome of a periodic probe of `d`: a failure takes the relay out of the
   * consensus (not Running) and breaks its run, so Stable and Guard start over from the
   * next probe it answers.
   */
  probed (d: Descriptor, ok: boolean): void {
    const r = this.relays.get(d.fingerprint)
    if (!r || r.d.host !== d.host || r.d.port !== d.port) return
    r.probing = false
    const now = this.now()
    const before = r.since
    if (!ok) r.since = null
    else if (r.since === null) r.since = now
    if ((before === null) !== (r.since === null)) this.cached = null
  }

  private get period (): number { return Math.max(1000, this.init.votePeriodMs ?? VOTE_PERIOD_MS) }
  private periodStart (now: number): number { return Math.floor(now / this.period) * this.period }

  /**
   * This authority's signed vote: the Running relays with their flags and the final hop,
   * remade when the Running set, a relay's address or content, a flag or the final hop
   * changes, and at the start of every voting period.
   */
  vote (): { text: string, doc: Vote, digest: string } {
    const now = this.now()
    this.prune(now)
    const period = this.periodStart(now)
    if (this.cached && this.cached.period === period && now < this.cached.flagsUntil) return this.cached
    const running = [...this.relays.values()].filter((r) => r.since !== null)
    const doc = signVote({
      validAfter: period,
      validUntil: period + (this.init.validityMs ?? 3600_000),
      // only Running relays are listed (as Tor's consensus methods since 2008 leave out non-Running ones)
      relays: running.map((r) => r.d).sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1)),
      server: this.init.serverDescriptor?.() ?? this.gateway?.d ?? null,
      flags: Object.fromEntries(running.map((r) => [r.d.fingerprint, this.flagsOf(r, now)])),
    }, this.init.key)
    this.cached = { text: JSON.stringify(doc), doc, digest: voteDigest(doc), period, flagsUntil: this.nextFlagChange(now) }
    return this.cached
  }

  /**
   * A peer's vote, as fetched (verified here against that peer's pinned fingerprint).
   * A vote that carries the pinned gateway's descriptor counts as that gateway's
   * heartbeat here. Throws MM_ERR_VOTE (or MM_ERR_CONFIG for a fingerprint that is no peer).
   */
  takeVote (fingerprint: string, doc: unknown): void {
    const fp = fingerprint.toLowerCase()
    if (!this.authorities.includes(fp) || fp === this.fingerprint) throw new MarshmelloError('MM_ERR_CONFIG', 'not a peer authority')
    const now = this.now()
    const v = verifyVote(doc, fp, now)
    if (v.validAfter > now + 60_000) throw new MarshmelloError('MM_ERR_VOTE', 'a vote from the future')
    const held = this.peerVotes.get(fp)
    if (held && held.doc.validAfter > v.validAfter) return // never back in time
    this.peerVotes.set(fp, { doc: v, digest: voteDigest(v) })
    const gw = v.server
    if (gw && !this.init.serverDescriptor && gw.fingerprint === this.init.gatewayFingerprint && (!this.gateway || this.gateway.d.published <= gw.published)) {
      if (this.gateway?.d.fingerprint !== gw.fingerprint) this.cached = null
      this.gateway = { d: gw, seen: now }
    }
  }

  /**
   * A round in which `fingerprint` did not answer: after PEER_DOWN_ROUNDS in a row its vote
   * no longer counts (the live authorities then agree again within seconds, not once the
   * vote has aged out: two of them may hold different last votes from it).
   */
  peerUnreachable (fingerprint: string): void {
    const fp = fingerprint.toLowerCase()
    const n = (this.peerFailures.get(fp) ?? 0) + 1
    this.peerFailures.set(fp, n)
    if (n >= PEER_DOWN_ROUNDS) this.peerVotes.delete(fp)
  }

  /** a round in which `fingerprint` answered */
  peerReachable (fingerprint: string): void {
    this.peerFailures.delete(fingerprint.toLowerCase())
  }

  /** the digest of the vote held from `fingerprint` (a peer fetches a vote again only when its digest changed) */
  heldVoteDigest (fingerprint: string): string | undefined {
    return this.peerVotes.get(fingerprint.toLowerCase())?.digest
  }

  /** the votes the method runs over: this authority's, and each peer's if recent enough */
  private currentVotes (now: number): { doc: Vote, digest: string }[] {
    const oldest = this.periodStart(now) - (VOTE_STALE_PERIODS - 1) * this.period
    const votes: { doc: Vote, digest: string }[] = [this.vote()]
    for (const [fp, v] of this.peerVotes) {
      if (v.doc.validAfter < oldest) this.peerVotes.delete(fp)
      else votes.push(v)
    }
    return votes
  }

  /** runs the consensus method over the votes held and signs the result (a body this authority computed itself) */
  private compute (): NonNullable<Directory['pending']> {
    const now = this.now()
    const votes = this.currentVotes(now)
    const key = votes.map((v) => v.digest).sort().join(',')
    if (this.pending && this.pending.votes === key) return this.pending
    const body = computeConsensus(votes.map((v) => v.doc), this.authorities.length)
    const digest = consensusDigest(body)
    if (this.pending?.digest === digest) {
      this.pending.votes = key
      return this.pending
    }
    this.pending = { body, digest, sigs: new Map([[this.fingerprint, signBody(body, this.init.key)]]), votes: key }
    return this.pending
  }

  /** what peers fetch (GET /v1/directory/signatures): the vote's digest, the body's digest and the signatures collected over it */
  state (): AuthorityState {
    const p = this.compute()
    return { voteDigest: this.vote().digest, digest: p.digest, signatures: [...p.sigs.values()] }
  }

  /**
   * A peer's signatures, as fetched: kept when they are over the very body this
   * authority computed (same digest) and by authorities of this set. Returns how many
   * signatures the body now carries.
   */
  takeSignatures (digest: unknown, signatures: unknown): number {
    const p = this.compute()
    if (digest !== p.digest || !Array.isArray(signatures)) return p.sigs.size
    const ok = validSigners(p.body, signatures.slice(0, MAX_AUTHORITIES), this.authorities)
    for (const s of signatures.slice(0, MAX_AUTHORITIES) as AuthoritySignature[]) {
      if (typeof s?.key !== 'string' || typeof s.signature !== 'string') continue
      const fp = directoryFingerprint(Buffer.from(s.key, 'base64'))
      if (ok.has(fp) && !p.sigs.has(fp)) p.sigs.set(fp, { key: s.key, signature: s.signature })
    }
    return p.sigs.size
  }

  /**
   * The newest consensus signed by at least `threshold` authorities (this one alone: at
   * once). Throws MM_ERR_NO_CONSENSUS before the authorities first agree.
   */
  consensus (): { text: string, doc: Consensus } {
    const p = this.compute()
    if (p.sigs.size >= this.threshold && (this.published?.digest !== p.digest || this.published.signers < p.sigs.size) &&
      (!this.published || this.published.doc.validAfter <= p.body.validAfter)) {
      const doc: Consensus = { ...p.body, signatures: [...p.sigs.values()].sort((a, b) => (a.key < b.key ? -1 : 1)) }
      this.published = { text: JSON.stringify(doc), doc, digest: p.digest, signers: p.sigs.size }
    }
    if (!this.published || this.published.doc.validUntil < this.now()) {
      throw new MarshmelloError('MM_ERR_NO_CONSENSUS', `the directory authorities have not agreed on a consensus yet (${p.sigs.size} of ${this.threshold} signatures)`)
    }
    return this.published
  }

  get privateNetwork (): boolean {
    return this.init.privateNetwork === true
  }

  get relayCount (): number {
    this.prune(this.now())
    return this.relays.size
  }
}

/** descriptor posts one source address may make (2/s, burst 20): every post not covered by POSTS_PER_HOP */
export const POSTS_PER_ADDRESS = { perSecond: 2, burst: 20 }
/**
 * Posts one identity already accepted here may make before it spends its address's
 * budget: 1 per 4 s, burst 3, above a heartbeat every 5 s (ConsensusSource) and a
 * restart, so honest heartbeats are never refused however many hops share an
 * address (a devnet's all do). A replayed public descriptor spends at most this per
 * listed hop, then its address's budget.
 */
export const POSTS_PER_HOP = { perSecond: 0.25, burst: 3 }

/** how often an authority fetches each peer's state (and its vote when that changed); never more than 4 times a second */
export const PEER_FETCH_MS = 1000
/** the same in a private test network (loopback devnets): the authorities agree within a second of a relay's post */
export const PEER_FETCH_PRIVATE_MS = 250

/**
 * One round with every peer (in parallel, at most one round in flight): GET its state;
 * GET its vote when the vote's digest differs from the one held; then offer its
 * signatures to the body computed from the votes now held. Failures are logged once per
 * peer and change of reason, never thrown: a peer that is down only stops counting.
 */
export async function syncPeers (dir: Directory, warn: (msg: string, f: Record<string, string>) => void = () => {}): Promise<void> {
  const states = await Promise.all(dir.peers.map(async (p) => {
    const base = p.url.replace(/\/$/, '')
    try {
      const res = await fetchDocument(`${base}/v1/directory/signatures`)
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
      const st = JSON.parse(res.text) as Partial<AuthorityState>
      if (typeof st.voteDigest === 'string' && st.voteDigest !== dir.heldVoteDigest(p.fingerprint)) {
        const v = await fetchDocument(`${base}/v1/directory/vote`)
        if (v.status !== 200) throw new Error(`vote: HTTP ${v.status}`)
        dir.takeVote(p.fingerprint, JSON.parse(v.text))
      }
      dir.peerReachable(p.fingerprint)
      return st
    } catch (err) {
      dir.peerUnreachable(p.fingerprint)
      warn('peer authority not reachable or refused', { peer: base, reason: (err as Error).message.slice(0, 200) })
      return null
    }
  }))
  // after every vote is in: the body is computed once, and each peer's signatures are offered to it
  for (const st of states) if (st) dir.takeSignatures(st.digest, st.signatures)
}

/** the directory's HTTP routes, mounted on the server's HTTPS app */
export async function directoryRoutes (app: FastifyInstance, opts: { directory: Directory, probe?: Probe | null, reprobe?: Probe | null, reprobeTickMs?: number, peerFetchMs?: number, now?: () => number, log?: { warn: (msg: string, f: Record<string, string>) => void } }): Promise<void> {
  const dir = opts.directory
  if (dir.peers.length > 0) {
    let running = false
    let said = new Map<string, string>()
    const warn = (msg: string, f: Record<string, string>) => {
      if (said.get(f.peer!) === f.reason) return // once per peer and reason
      said.set(f.peer!, f.reason!)
      opts.log?.warn(msg, f)
    }
    const timer = setInterval(() => {
      if (running) return // one round in flight
      running = true
      syncPeers(dir, warn).finally(() => { running = false })
    }, Math.max(250, opts.peerFetchMs ?? (dir.privateNetwork ? PEER_FETCH_PRIVATE_MS : PEER_FETCH_MS)))
    timer.unref()
    app.addHook('onClose', async () => { clearInterval(timer); said = new Map() })
  }
  // null: no reachability check (tests of the parsers only); default: probe every new address
  // a private test network hides nothing from its own operator: failures answer at once
  // there (a relay probed before it listens retries sooner); elsewhere after the full timeout
  const probe = opts.probe === undefined ? cachedProbe(dir.privateNetwork ? (d) => probeHop(d, 3000, 0) : probeHop) : opts.probe
  // periodic probes of listed relays (Running, and the runs Stable and Guard count): the raw
  // probe, uncached, failing fast (nobody waits on its answer); off where posts are not probed
  const reprobe = opts.reprobe === undefined ? (probe ? (d: Descriptor) => probeHop(d, 3000, 0) : null) : opts.reprobe
  if (reprobe) {
    const timer = setInterval(() => {
      for (const d of dir.dueProbes()) reprobe(d).then(() => dir.probed(d, true), () => dir.probed(d, false))
    }, opts.reprobeTickMs ?? 1000)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  }
  const perAddress = new TokenBuckets(POSTS_PER_ADDRESS.perSecond, POSTS_PER_ADDRESS.burst, 10_000, opts.now)
  const perHop = new TokenBuckets(POSTS_PER_HOP.perSecond, POSTS_PER_HOP.burst, 10_000, opts.now)
  const acceptedHops = new LRUCache<string, true>({ max: 10_000 })
  app.post('/v1/directory/descriptors', { bodyLimit: 32 * 1024 }, async (req, reply) => {
    const claimed = (req.body as { fingerprint?: unknown } | null)?.fingerprint
    const heartbeat = typeof claimed === 'string' && acceptedHops.has(claimed) && perHop.take(claimed)
    if (!heartbeat && !perAddress.take(req.socket.remoteAddress ?? '?')) throw new MarshmelloError('MM_ERR_RATE', 'too many descriptor posts; heartbeat at most every few seconds')
    if (!req.body || typeof req.body !== 'object') throw new MarshmelloError('MM_ERR_DESCRIPTOR', 'send the signed descriptor as a JSON object')
    const d0 = verifyDescriptor(req.body, Date.now())
    dir.admissible(d0) // the address rules first: the probe never connects to a refused address
    if (probe) await probe(d0)
    const d = dir.accept(req.body)
    acceptedHops.set(d.fingerprint, true)
    return reply.code(202).send({ accepted: d.fingerprint })
  })
  app.get('/v1/directory/consensus', async (_req, reply) => {
    let text: string
    try {
      text = dir.consensus().text
    } catch (err) {
      // not a failure of this process: the authorities have not agreed yet (answered, not logged as an error)
      if ((err as MarshmelloError).code === 'MM_ERR_NO_CONSENSUS') return reply.code(503).send({ error: { code: 'MM_ERR_NO_CONSENSUS', message: (err as Error).message } })
      throw err
    }
    return reply.type('application/json').send(text)
  })
  app.get('/v1/directory/key', async () => ({ fingerprint: dir.fingerprint, authorities: dir.authorities, threshold: dir.threshold }))
  // between authorities (PROTOCOL §7.8): this one's signed vote, and the digest of the body it signs with the signatures collected
  app.get('/v1/directory/vote', async (_req, reply) => reply.type('application/json').send(dir.vote().text))
  app.get('/v1/directory/signatures', async () => dir.state())
}
