// The directory service (docs/ARCHITECTURE.md §7): relays post descriptors signed with their
// identity keys (and re-post them as heartbeats); stale ones drop out; the
// consensus of live descriptors is signed with the server's Ed25519 directory key
// and carries a validity period. The final hop's own descriptor is either given
// (one process) or accepted only from the pinned gateway fingerprint (split mode).
// Address policy (PROTOCOL §7.1): IP literals only, public addresses only unless the
// directory serves a private test network, at most MAX_PER_ADDRESS relays per IP
// (Tor's AuthDirMaxServersPerAddr), checked before the reachability probe connects.
import type { FastifyInstance } from 'fastify'
import { LRUCache } from 'lru-cache'
import { MarshmelloError } from '../../errors.js'
import { RELAY_FLAGS, signConsensus, directoryFingerprint, type Consensus, type RelayFlag } from '../../onion/directory/consensus.js'
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
  now?: () => number
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
  private cached: { text: string, at: number, doc: Consensus, flagsUntil: number } | null = null
  readonly fingerprint: string
  private readonly now: () => number

  constructor (private readonly init: DirectoryInit) {
    this.fingerprint = directoryFingerprint(init.key.publicKey)
    this.now = init.now ?? Date.now
  }

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
    }
    this.lastPublished.delete(d.fingerprint)
    this.lastPublished.set(d.fingerprint, { published: d.published, expires: d.expires })
    // bounded: oldest first (a forgotten entry's copies could be replayed until they expire)
    for (const fp of this.lastPublished.keys()) {
      if (this.lastPublished.size <= 2 * (this.init.maxRelays ?? 5000) + 1) break
      this.lastPublished.delete(fp)
    }
    this.cached = null
    return d
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

  /** the signed consensus, re-signed when the relay set changes, a relay gains a flag, or every 10 s */
  consensus (): { text: string, doc: Consensus } {
    const now = this.now()
    this.prune(now)
    if (this.cached && now - this.cached.at < 10_000 && now < this.cached.flagsUntil) return this.cached
    const server = this.init.serverDescriptor?.() ?? this.gateway?.d ?? null
    const running = [...this.relays.values()].filter((r) => r.since !== null)
    const doc = signConsensus({
      v: 1,
      validAfter: now,
      validUntil: now + (this.init.validityMs ?? 3600_000),
      directoryKey: this.init.key.publicKey.toString('base64'),
      // only Running relays are listed (as Tor's consensus methods since 2008 leave out non-Running ones)
      relays: running.map((r) => r.d).sort((a, b) => a.fingerprint.localeCompare(b.fingerprint)),
      server,
      flags: Object.fromEntries(running.map((r) => [r.d.fingerprint, this.flagsOf(r, now)])),
    }, this.init.key.privateKey)
    this.cached = { text: JSON.stringify(doc), at: now, doc, flagsUntil: this.nextFlagChange(now) }
    return this.cached
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

/** the directory's HTTP routes, mounted on the server's HTTPS app */
export async function directoryRoutes (app: FastifyInstance, opts: { directory: Directory, probe?: Probe | null, reprobe?: Probe | null, reprobeTickMs?: number, now?: () => number }): Promise<void> {
  const dir = opts.directory
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
  app.get('/v1/directory/consensus', async (_req, reply) => reply.type('application/json').send(dir.consensus().text))
  app.get('/v1/directory/key', async () => ({ fingerprint: dir.fingerprint }))
}
