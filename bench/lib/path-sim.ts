// The path-compromise simulation (issue 15 item 8), pure: no sockets, no processes. N
// relays, an attacker holding a fraction f of them (spread over /16s, or Sybils in one
// /16), many clients, 30 simulated days on a fake clock. Every consensus period the
// directory signs a consensus (the real signConsensus; honest relays are sometimes absent,
// as after a restart) and each client fetches it, then builds circuits, with the REAL
// code: verifyConsensus (pinned key, Ed25519 signature, validity), newerConsensus (no
// going back in time), the Guards module (sample, primaries, reachability) and choosePath.
// "old" replays the client before issue 15 (commit 01e9c56: a consensus from a random
// listed relay, one guard replaced when a consensus omits it), kept here only to score it.
// Clients pin three directory authorities with a threshold of two (PROTOCOL §7.8); the
// honest two sign each period's consensus and the third is the attacker's. Hostile
// directory sources serve honest documents (`passive`), the one of two periods ago, still
// valid (`stale`), one listing only the attacker's relays signed with a key of its own
// (`forged`), or the same signed by the hostile authority alone (`authority`: a pinned key,
// one signature of the two needed). Not simulated: descriptor self-signatures (an RSA-2048
// key takes ~0.3 s to make here; the consensus signatures are real), the authorities'
// vote exchange (test/roles/server/authorities.test.ts covers it).
import { ed25519KeyPair } from '../../src/onion/crypto/primitives.js'
import { allFlags, authorityPin, directoryFingerprint, signConsensus, verifyConsensus, type Consensus } from '../../src/onion/directory/consensus.js'
import { DescriptorVerifier, type Descriptor } from '../../src/onion/directory/descriptor.js'
import { newerConsensus } from '../../src/roles/client/circuit-manager.js'
import { Guards, type GuardPick, type GuardStore } from '../../src/roles/client/circuits/guards.js'
import type { GuardState } from '../../src/roles/client/circuits/guard-state.js'
import { choosePath } from '../../src/roles/client/network.js'
import { FakeClock } from '../../test/helpers/fake-clock.js'

export interface SimInit {
  /** listed relays in all, the attacker's included (default 200) */
  relays?: number
  /** the attacker's share of the relays */
  f: number
  clients?: number
  days?: number
  /** hours between consensuses, and between a client's fetches (default 3) */
  stepHours?: number
  /** circuits each client builds per day (default 2) */
  circuitsPerDay?: number
  /** chance that an honest relay is absent from one consensus (default 0.0005: a restart a week or so) */
  absent?: number
  /** the attacker's relays each in a /16 of its own, or all in one /16 (Sybils on one subnet) */
  sybils?: 'spread' | 'subnet'
  /** what a hostile directory source serves */
  cache?: 'passive' | 'stale' | 'forged' | 'authority'
  code: 'new' | 'old'
  seed?: number
}

export interface SimResult {
  code: 'new' | 'old'
  f: number
  /** the attacker's actual share of the listed relays */
  share: number
  clients: number
  /** clients that ever entered through a hostile guard in the period */
  guardEver: number
  /** clients that ever fetched a consensus from a hostile source */
  directoryEver: number
  /** clients whose guard or directory source was ever hostile */
  eitherEver: number
  /** clients whose current guard is hostile at the end */
  guardAtEnd: number
  /** circuits whose guard and exit were both hostile, of all circuits built */
  guardExitCircuits: number
  /** clients with at least one circuit whose guard and exit were both hostile */
  guardExitEver: number
  circuits: number
  /** documents from hostile sources the clients accepted / refused */
  hostileAccepted: number
  hostileRefused: number
  /** times a client adopted a consensus signed by the hostile authority alone (must be 0) */
  hostileAuthorityAlone: number
  /** times a client adopted a consensus older than the one it held (taken back in time) */
  wentBack: number
  /** distinct guards a client used, on average */
  guardsPerClient: number
  /** build failures with no usable guard (MM_ERR_NO_GUARD) */
  noGuard: number
}

const HOUR = 3600_000
const DAY = 24 * HOUR

/** mulberry32: a small seeded generator, so a run is repeatable (the client's own draws use the CSPRNG) */
function seeded (seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n: number) => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    const u = ((x ^ (x >>> 14)) >>> 0) / 4294967296
    return Math.floor(u * n)
  }
}

/** descriptor self-signatures are not simulated (see the file comment): every well-formed entry is taken */
const simDescriptors = new DescriptorVerifier({ verify: (d) => d as Descriptor })

function relay (i: number, hostile: boolean, sybils: 'spread' | 'subnet'): Descriptor {
  // honest relays: one /16 each; the attacker's: one /16 each, or all in 66.66/16
  const host = hostile
    ? (sybils === 'subnet' ? `66.66.${i >> 8}.${i & 255}` : `${101 + (i >> 8)}.${i & 255}.0.1`)
    : `${11 + (i >> 8)}.${i & 255}.0.1`
  const fingerprint = (hostile ? 'ee' : 'aa') + i.toString(16).padStart(62, '0')
  return { v: 1, role: 'relay', nickname: `${hostile ? 'evil' : 'r'}${i}`, host, port: 443, identityKey: '', fingerprint, tlsCert: '', tlsFingerprint: '', published: 0, expires: Number.MAX_SAFE_INTEGER, signature: '' }
}

/** a GuardStore that keeps the object itself (no copies: thousands of clients) */
function bareStore (): GuardStore {
  let g: GuardState | undefined
  return { load: async () => g, save: async (next) => { g = next } }
}

/** the client before issue 15 (01e9c56), as far as guard and directory choices go */
const sources = new WeakMap<Consensus, Descriptor[]>()
class OldClient {
  guard: { fingerprint: string, failures: number } | undefined
  constructor (private readonly random: (n: number) => number) {}
  /** fetchConsensus: the first of the bootstrap and listed relays, in random order, that answers */
  directorySource (held: Consensus, bootstrap: Descriptor[]): Descriptor {
    let all = sources.get(held)
    if (!all) sources.set(held, all = [...new Map([...bootstrap, ...held.relays].map((d) => [d.fingerprint, d])).values()])
    return all[this.random(all.length)]
  }

  /** guards.pick + adopt: the kept guard while listed, else a new one drawn from the listed relays */
  entry (c: Consensus): string {
    if (!this.guard || !c.relays.some((r) => r.fingerprint === this.guard!.fingerprint)) {
      this.guard = { fingerprint: c.relays[this.random(c.relays.length)].fingerprint, failures: 0 }
    }
    return this.guard.fingerprint
  }
}

export async function simulate (o: SimInit): Promise<SimResult> {
  const n = o.relays ?? 200
  const hostileCount = Math.round(o.f * n)
  const sybils = o.sybils ?? 'spread'
  const clients = o.clients ?? 2000
  const days = o.days ?? 30
  const stepMs = (o.stepHours ?? 3) * HOUR
  const steps = Math.round(days * DAY / stepMs)
  const circuitEvery = Math.max(1, Math.round(DAY / stepMs / (o.circuitsPerDay ?? 2)))
  const absent = o.absent ?? 0.0005
  const cache = o.cache ?? 'passive'
  const random = seeded(o.seed ?? 1)
  const clock = new FakeClock(1_900_000_000_000)

  const all = Array.from({ length: n }, (_, i) => relay(i, i >= n - hostileCount, sybils))
  const hostile = new Set(all.slice(n - hostileCount).map((d) => d.fingerprint))
  const server = { ...relay(999_999, false, 'spread'), role: 'server' as const, nickname: 'server', host: '198.51.100.1' }
  // three pinned authorities, two must sign: the honest two, and the attacker's
  const [dir, dir2, hostileAuthority] = [ed25519KeyPair(), ed25519KeyPair(), ed25519KeyPair()]
  const pinned = authorityPin([dir, dir2, hostileAuthority].map((k) => directoryFingerprint(k.publicKey)))
  const evil = ed25519KeyPair()
  const alone = new WeakSet<object>()
  const bootstrap = all.slice(0, 3) // the relays a user configured (a devnet lists all of its own)

  const sign = (relays: Descriptor[], ...keys: typeof dir[]) => signConsensus({ v: 2, method: 1, validAfter: clock.now(), validUntil: clock.now() + 3 * stepMs, relays, server, flags: allFlags(relays) }, ...(keys.length > 0 ? keys : [dir, dir2]))
  /** what a client gets from a source: the verified document, or the error verifying it threw */
  const verified = new Map<object, Consensus | Error>()
  const check = (doc: object): Consensus | Error => {
    let v = verified.get(doc)
    if (v === undefined) {
      try { v = verifyConsensus(JSON.parse(JSON.stringify(doc)), pinned, clock.now(), simDescriptors) } catch (err) { v = err as Error }
      if (!(v instanceof Error) && alone.has(doc)) alone.add(v)
      verified.set(doc, v)
    }
    return v
  }

  const nu = Array.from({ length: clients }, () => new Guards({ store: bareStore(), clock, random, primaryRetryMs: stepMs / 2 }))
  const old = Array.from({ length: clients }, () => new OldClient(random))
  const held: (Consensus | null)[] = new Array(clients).fill(null)
  const guardEver = new Uint8Array(clients)
  const dirEver = new Uint8Array(clients)
  const bothEver = new Uint8Array(clients)
  const guardNow: (string | undefined)[] = new Array(clients)
  const guardsUsed = Array.from({ length: clients }, () => new Set<string>())
  let circuits = 0
  let both = 0
  let hostileAccepted = 0
  let hostileRefused = 0
  let hostileAuthorityAlone = 0
  let noGuard = 0
  let wentBack = 0

  let previous: object | null = null
  let older: object | null = null
  for (let step = 0; step < steps; step++) {
    const listed = all.filter((d) => hostile.has(d.fingerprint) || random(1_000_000) >= absent * 1_000_000)
    const honestDoc = sign(listed)
    // stale: the document of two periods ago (still valid: documents live three periods)
    const own = all.filter((d) => hostile.has(d.fingerprint))
    const hostileDoc = cache === 'forged'
      ? sign(own, evil)
      : cache === 'authority' ? sign(own, hostileAuthority) : cache === 'stale' && older ? older : honestDoc
    if (cache === 'authority') alone.add(hostileDoc)
    const served = (source: string): object => hostile.has(source) ? hostileDoc : honestDoc

    for (let i = 0; i < clients; i++) {
      // the directory fetch (the first one from a configured bootstrap relay, in both codes)
      const h = held[i]
      if (o.code === 'old' || h === null) {
        const src = h === null ? bootstrap[random(bootstrap.length)] : old[i].directorySource(h, bootstrap)
        const got = check(served(src.fingerprint))
        if (hostile.has(src.fingerprint)) {
          dirEver[i] = 1
          if (got instanceof Error) hostileRefused++
          else if (got.validAfter !== clock.now()) hostileAccepted++
        }
        if (!(got instanceof Error)) {
          if (h && got.validAfter < h.validAfter) wentBack++
          if (alone.has(got)) hostileAuthorityAlone++
          held[i] = got
        }
        if (h === null && o.code === 'new' && held[i]) await nu[i].observe(held[i]!)
      } else {
        // CircuitManager.refreshConsensus: through the guard; a bad answer marks it and the next guard is asked
        for (let attempt = 0; attempt < 3; attempt++) {
          let pick: GuardPick
          try { pick = await nu[i].pick(h) } catch { noGuard++; break }
          const src = pick.guard.fingerprint
          if (hostile.has(src)) dirEver[i] = 1
          const got = check(served(src))
          let next: Consensus | undefined
          if (!(got instanceof Error)) {
            try { next = newerConsensus(h, got) } catch {}
          }
          if (hostile.has(src) && served(src) !== honestDoc) {
            if (next && next.validAfter !== clock.now()) hostileAccepted++
            else hostileRefused++
          }
          if (next) {
            if (next.validAfter < h.validAfter) wentBack++
            if (alone.has(next)) hostileAuthorityAlone++
            held[i] = next
            await nu[i].observe(next)
            break
          }
          nu[i].connectFailed(pick)
        }
      }

      // circuits: the entry from the guard module (or the old rule), the rest from choosePath
      if ((step + i) % circuitEvery !== 0 || !held[i]) continue
      const c = held[i]!
      let entry: string
      let pick: GuardPick | undefined
      if (o.code === 'new') {
        try { pick = await nu[i].pick(c) } catch { noGuard++; continue }
        entry = pick.guard.fingerprint
      } else {
        entry = old[i].entry(c)
      }
      const { path } = choosePath(c, { guard: entry })
      if (pick) await nu[i].succeeded(pick, path.length)
      circuits++
      guardNow[i] = entry
      guardsUsed[i].add(entry)
      if (hostile.has(entry)) guardEver[i] = 1
      if (hostile.has(entry) && hostile.has(path[path.length - 2].fingerprint)) {
        both++
        bothEver[i] = 1
      }
    }
    older = previous
    previous = honestDoc
    await clock.advance(stepMs)
  }

  const count = (a: Uint8Array) => a.reduce((s, x) => s + x, 0)
  let either = 0
  for (let i = 0; i < clients; i++) if (guardEver[i] || dirEver[i]) either++
  return {
    code: o.code,
    f: o.f,
    share: hostileCount / n,
    clients,
    guardEver: count(guardEver) / clients,
    directoryEver: count(dirEver) / clients,
    eitherEver: either / clients,
    guardAtEnd: guardNow.filter((g) => g !== undefined && hostile.has(g)).length / clients,
    guardExitCircuits: circuits ? both / circuits : 0,
    guardExitEver: count(bothEver) / clients,
    circuits,
    hostileAccepted,
    hostileRefused,
    hostileAuthorityAlone,
    wentBack,
    guardsPerClient: guardsUsed.reduce((s, g) => s + g.size, 0) / clients,
    noGuard,
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`

/** the README table: f against the compromised fractions, old and new code side by side */
export function table (rows: { old: SimResult, new: SimResult }[]): string {
  const head = '| f (attacker\'s relays) | guard or directory source hostile, ever (old → new) | guard hostile, ever (old → new) | circuits with guard and exit hostile (old → new; f²) | clients with a guard+exit circuit, ever (old → new) | guards per client (old → new) |\n|---|---|---|---|---|---|'
  const lines = rows.map(({ old: a, new: b }) =>
    `| ${pct(b.share)} | ${pct(a.eitherEver)} → ${pct(b.eitherEver)} | ${pct(a.guardEver)} → ${pct(b.guardEver)} | ${pct(a.guardExitCircuits)} → ${pct(b.guardExitCircuits)} (${pct(b.share * b.share)}) | ${pct(a.guardExitEver)} → ${pct(b.guardExitEver)} | ${a.guardsPerClient.toFixed(2)} → ${b.guardsPerClient.toFixed(2)} |`)
  return [head, ...lines].join('\n')
}
