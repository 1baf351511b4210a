// Path choice (src/onion/directory/path.ts, families.ts) and the shuffle (crypto/random.ts)
// against the attacks of issue 15: IPv6 Sybils in one /32 and relays in one /16 are never
// on one path; a mutual family never, a one-sided claim does not count; a private address
// is never chosen outside a private network; each hop is uniform over its candidates;
// the Fisher–Yates shuffle passes a chi-square bound that a random-comparator sort fails.
import t from 'tap'
import { randomInt, shuffle } from '../../../src/onion/crypto/random.js'
import type { Consensus } from '../../../src/onion/directory/consensus.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { related } from '../../../src/onion/directory/families.js'
import { candidateRelays, choosePath } from '../../../src/onion/directory/path.js'
import { codeOf } from '../helpers.js'

let n = 0
/** a listed relay (path choice never re-verifies signatures: the consensus did) */
const relay = (host: string, o: Partial<Descriptor> = {}): Descriptor => {
  n++
  return {
    v: 1, role: 'relay', nickname: `r${n}`, host, port: 9000 + n, identityKey: '', fingerprint: n.toString(16).padStart(64, '0'),
    tlsCert: '', tlsFingerprint: '0'.repeat(64), published: 0, expires: 1, signature: '', ...o,
  }
}
const server = relay('198.51.100.1', { role: 'server' })
const consensus = (relays: Descriptor[]): Consensus => ({ v: 2, method: 1, validAfter: 0, validUntil: 1, relays, server, signatures: [], flags: {} })
const fps = (ds: Descriptor[]) => ds.map((d) => d.fingerprint)

/** chi-square statistic of observed counts against equal expected counts over `k` classes */
function chiSquare (counts: Map<string, number>, k: number, total: number): number {
  const e = total / k
  let chi = (k - counts.size) * e // classes never seen
  for (const c of counts.values()) chi += (c - e) ** 2 / e
  return chi
}
// upper 10^-4 quantiles (Wilson–Hilferty): a fair draw fails about once in 10 000 runs
const CHI2_1E4 = { 9: 34.1, 23: 57.3 } as const

t.test('IPv6 Sybils in one /32 and IPv4 relays in one /16 are never on one path', async (t) => {
  const sybils = ['2001:db8::1', '2001:db8::2', '2001:db8::3'].map((h) => relay(h))
  const slash16 = ['203.0.113.1', '203.0.7.9'].map((h) => relay(h))
  const honest = ['192.0.2.10', '198.18.0.1', '2a00:1450::1', '8.8.4.4'].map((h) => relay(h))
  const c = consensus([...sybils, ...slash16, ...honest])
  const groups = [new Set(fps(sybils)), new Set(fps(slash16))]
  let sybilSeen = 0
  for (let i = 0; i < 2000; i++) {
    const { path } = choosePath(c)
    for (const g of groups) {
      const k = path.filter((d) => g.has(d.fingerprint)).length
      if (k > 1) return t.fail(`two related relays on one path: ${path.map((d) => d.host).join(' → ')}`)
      sybilSeen += g === groups[0] ? k : 0
    }
  }
  t.ok(sybilSeen > 0, 'a Sybil is still chosen, just never beside another')
  t.equal(codeOf(() => choosePath(consensus(sybils))), 'MM_ERR_TOO_FEW_RELAYS', '2001:db8::1/2/3 alone cannot make a circuit (the attack of issue 15)')
  t.equal(codeOf(() => choosePath(consensus([sybils[0], relay('2001:db8::9'), ...slash16]))), 'MM_ERR_TOO_FEW_RELAYS', 'three relays in two groups cannot make three hops')
  t.ok(related(relay('203.0.113.5'), relay('::ffff:203.0.9.9')), 'an IPv4-mapped IPv6 address is in its IPv4 /16')
})

t.test('families: mutual declarations keep two relays apart, a one-sided claim does not', async (t) => {
  const a = relay('192.0.2.1')
  const b = relay('198.51.100.20')
  const c = relay('203.0.113.30')
  a.family = [b.fingerprint, c.fingerprint] // a claims b and c
  b.family = [a.fingerprint] // b agrees; c does not
  t.ok(related(a, b), 'a and b name each other: one family')
  t.notOk(related(a, c), 'a names c but c does not name a: no family (an attacker cannot exclude honest relays by naming them)')
  t.ok(related(a, b, { subnets: false }), 'a family holds even where the subnet rule is waived')
  const others = ['8.8.4.4', '9.9.9.9', '1.1.1.1'].map((h) => relay(h))
  const cons = consensus([a, b, c, ...others])
  let ac = 0
  for (let i = 0; i < 2000; i++) {
    const ids = new Set(fps(choosePath(cons).path))
    if (ids.has(a.fingerprint) && ids.has(b.fingerprint)) return t.fail('a and b on one path')
    if (ids.has(a.fingerprint) && ids.has(c.fingerprint)) ac++
  }
  t.ok(ac > 0, `a and c (one-sided) do share paths (${ac} of 2000)`)
})

t.test('private addresses: never chosen outside a private network; a private network waives subnets only', async (t) => {
  const pub = ['192.0.2.1', '198.51.100.2', '203.0.113.3'].map((h) => relay(h))
  const priv = ['127.0.0.1', '10.0.0.1', '169.254.169.254', 'fd00::1'].map((h) => relay(h))
  const mixed = candidateRelays(consensus([...pub, ...priv]))
  t.same(fps(mixed.pool), fps(pub), 'a consensus mixing public and private relays: only the public are candidates')
  t.equal(mixed.subnets, true)
  const local = ['127.0.0.11', '127.0.0.12', '127.0.0.13'].map((h) => relay(h))
  const devnet = candidateRelays(consensus(local))
  t.same({ n: devnet.pool.length, subnets: devnet.subnets }, { n: 3, subnets: false }, 'all on loopback (a devnet): the /16 rule is waived')
  t.equal(choosePath(consensus(local)).path.length, 4, 'so a devnet on one /16 still builds circuits')
  const sameHost = ['127.0.0.1', '127.0.0.1', '127.0.0.1'].map((h) => relay(h))
  t.equal(choosePath(consensus(sameHost)).path.length, 4, 'and relays sharing 127.0.0.1 (distinct ports) too')
  local[0].family = [local[1].fingerprint]
  local[1].family = [local[0].fingerprint]
  t.equal(codeOf(() => choosePath(consensus(local))), 'MM_ERR_TOO_FEW_RELAYS', 'declared families still apply in a private network')
})

t.test('each hop is uniform over its candidates (chi-square over 10 000 paths)', async (t) => {
  const relays = Array.from({ length: 10 }, (_, i) => relay(`${20 + i}.0.0.1`))
  const c = consensus(relays)
  const first = new Map<string, number>()
  const N = 10_000
  for (let i = 0; i < N; i++) {
    const fp = choosePath(c).path[0].fingerprint
    first.set(fp, (first.get(fp) ?? 0) + 1)
  }
  const chi = chiSquare(first, 10, N)
  t.ok(chi < CHI2_1E4[9], `entry hop chi-square ${chi.toFixed(1)} < ${CHI2_1E4[9]} (9 degrees of freedom)`)
  const g = choosePath(c, { guard: relays[4].fingerprint })
  t.equal(g.path[0].fingerprint, relays[4].fingerprint, 'the guard module\'s entry comes first')
})

t.test('shuffle: every permutation equally likely; a random-comparator sort fails the same bound', async (t) => {
  const N = 24_000
  const tally = (perm: () => number[]) => {
    const m = new Map<string, number>()
    for (let i = 0; i < N; i++) {
      const k = perm().join('')
      m.set(k, (m.get(k) ?? 0) + 1)
    }
    return m
  }
  const fair = tally(() => shuffle([0, 1, 2, 3]))
  const fairChi = chiSquare(fair, 24, N)
  t.equal(fair.size, 24, 'all 24 orders of 4 items occur')
  t.ok(fairChi < CHI2_1E4[23], `Fisher–Yates chi-square ${fairChi.toFixed(1)} < ${CHI2_1E4[23]} (23 degrees of freedom)`)
  const biased = chiSquare(tally(() => [0, 1, 2, 3].sort(() => randomInt(3) - 1)), 24, N)
  t.ok(biased > CHI2_1E4[23], `the old sort(() => randomInt(3) - 1) fails it: chi-square ${biased.toFixed(0)}`)
  t.same(shuffle([]), [])
  const input = [1, 2, 3]
  t.same(shuffle(input).sort(), [1, 2, 3], 'a permutation of its input')
  t.same(input, [1, 2, 3], 'the input is not changed')
})
