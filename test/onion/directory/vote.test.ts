// Votes, the consensus method and multi-authority verification (docs/PROTOCOL.md §7.8;
// Tor's dir-spec §3.8 "Computing a consensus from a set of votes"): a relay is listed
// when a majority of the configured authorities vote for it, each flag by a majority
// of those that list it, the descriptor chosen deterministically, the same body from
// any vote order; a consensus needs the threshold of distinct pinned signers, so a
// hostile authority that lists only its own relays is outvoted, and what it signs
// alone is refused by the real verification (MM_ERR_CONSENSUS_THRESHOLD).
import t from 'tap'
import { ed25519KeyPair, rsaFingerprint, rsaGenerate, sha256 } from '../../../src/onion/crypto/primitives.js'
import { selfSignedCertificate } from '../../../src/onion/crypto/certificate.js'
import { authorityPin, consensusDigest, directoryFingerprint, serverAuthority, signBody, signConsensus, verifyConsensus, type ConsensusBody, type RelayFlag } from '../../../src/onion/directory/consensus.js'
import { canonicalJson } from '../../../src/onion/directory/canonical.js'
import { certFingerprint, signDescriptor, type Descriptor } from '../../../src/onion/directory/descriptor.js'
import { CONSENSUS_METHOD, computeConsensus, signVote, verifyVote, type Vote } from '../../../src/onion/directory/vote.js'
import { codeOf } from '../helpers.js'

const NOW = Date.now()
const PERIOD = NOW - (NOW % 10_000)
const tls = selfSignedCertificate({ commonName: 'relay', altNames: ['127.0.0.1'] })

/** n real, self-signed relay descriptors (RSA-2048): what the directory and the clients verify */
const ids = Array.from({ length: 5 }, () => rsaGenerate())
function relay (i: number, o: { published?: number, port?: number, role?: 'relay' | 'server' } = {}): Descriptor {
  const id = ids[i]!
  return signDescriptor({
    v: 1, role: o.role ?? 'relay', nickname: `r${i}`, host: `127.0.0.${i + 1}`, port: o.port ?? 9000 + i,
    identityKey: id.publicDer.toString('base64'), fingerprint: rsaFingerprint(id.publicDer).toString('hex'),
    tlsCert: tls.certPem, tlsFingerprint: certFingerprint(tls.certPem), published: o.published ?? NOW - 1000, expires: NOW + 3 * 3600_000,
  }, id.privateDer)
}
const R = [0, 1, 2, 3].map((i) => relay(i))
const server = relay(4, { role: 'server' })
const ALL: RelayFlag[] = ['Guard', 'Running', 'Stable']
const auths = [ed25519KeyPair(), ed25519KeyPair(), ed25519KeyPair()]
const fps = auths.map((k) => directoryFingerprint(k.publicKey))
const pin3 = fps.join(',')

function vote (key: typeof auths[0], relays: Descriptor[], o: { flags?: (d: Descriptor) => RelayFlag[], server?: Descriptor | null, validAfter?: number } = {}): Vote {
  const validAfter = o.validAfter ?? PERIOD
  return signVote({ validAfter, validUntil: validAfter + 3600_000, relays, server: o.server === undefined ? server : o.server, flags: Object.fromEntries(relays.map((d) => [d.fingerprint, o.flags?.(d) ?? ALL])) }, key)
}
const fpList = (b: ConsensusBody) => b.relays.map((r) => r.fingerprint)
const sorted = (ds: Descriptor[]) => ds.map((d) => d.fingerprint).sort()

/** every permutation of `xs` */
function permutations<T> (xs: T[]): T[][] {
  if (xs.length <= 1) return [xs]
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]))
}

t.test('method: a relay is listed when a majority of the configured authorities list it', async t => {
  const votes = [vote(auths[0]!, [R[0]!, R[1]!, R[2]!]), vote(auths[1]!, [R[0]!, R[1]!]), vote(auths[2]!, [R[0]!, R[3]!])]
  const b = computeConsensus(votes, 3)
  t.same(fpList(b), sorted([R[0]!, R[1]!]), 'R0 (3 votes) and R1 (2 votes); R2 and R3 (1 vote each) left out')
  t.equal(b.method, CONSENSUS_METHOD)
  t.equal(b.server?.fingerprint, server.fingerprint, 'the final hop, named by all three')
  t.same(fpList(computeConsensus([votes[0]!, votes[1]!], 3)), sorted([R[0]!, R[1]!]), 'two of three votes: the two must agree')
  t.same(fpList(computeConsensus([votes[0]!], 3)), [], 'one vote of three authorities lists nothing (a majority of the configured set, not of the votes at hand)')
  t.equal(computeConsensus([votes[0]!], 3).server, null, 'nor a final hop')
  t.same(fpList(computeConsensus([votes[0]!], 1)), sorted([R[0]!, R[1]!, R[2]!]), 'one authority of one: its vote is the consensus')
  t.equal(codeOf(() => computeConsensus([], 3)), 'MM_ERR_VOTE', 'no votes')
  t.equal(codeOf(() => computeConsensus(votes, 2)), 'MM_ERR_VOTE', 'more votes than authorities')
  t.same(fpList(computeConsensus([votes[0]!, vote(auths[0]!, [R[3]!], { validAfter: PERIOD - 10_000 })], 1)), sorted([R[0]!, R[1]!, R[2]!]), 'two votes by one authority: its newer one counts, once')
})

t.test('method: each flag by a majority of the authorities that list the relay', async t => {
  const v = [
    vote(auths[0]!, R, { flags: () => ['Guard', 'Running', 'Stable'] }),
    vote(auths[1]!, R, { flags: (d) => d === R[0] ? ['Running', 'Stable'] : ['Running'] }),
    vote(auths[2]!, [R[0]!, R[1]!], { flags: () => ['Running'] }),
  ]
  const b = computeConsensus(v, 3)
  t.same(b.flags[R[0]!.fingerprint], ['Running', 'Stable'], 'R0: Stable from 2 of 3, Guard from 1 of 3')
  t.same(b.flags[R[1]!.fingerprint], ['Running'], 'R1: Stable and Guard from 1 of 3 only')
  t.same(b.flags[R[2]!.fingerprint], ['Running'], 'R2 listed by 2: Guard and Stable from 1 of 2 is not more than half')
  t.equal(b.flags[R[3]!.fingerprint]?.join(), 'Running', 'R3 listed by 2')
  const two = computeConsensus([vote(auths[0]!, [R[0]!], { flags: () => ALL }), vote(auths[1]!, [R[0]!], { flags: () => ALL })], 3)
  t.same(two.flags[R[0]!.fingerprint], ALL, 'both listing authorities give Guard: Guard')
  t.same(Object.keys(b.flags).sort(), fpList(b), 'flags only for listed relays')
})

t.test('method: the descriptor is chosen deterministically: most votes, then newest published, then lowest digest', async t => {
  const older = relay(0, { published: NOW - 9000 })
  const newer = relay(0, { published: NOW - 1000 })
  t.equal(computeConsensus([vote(auths[0]!, [older]), vote(auths[1]!, [older]), vote(auths[2]!, [newer])], 3).relays[0]!.published, older.published, 'most votes wins over newer')
  t.equal(computeConsensus([vote(auths[0]!, [older]), vote(auths[1]!, [newer])], 3).relays[0]!.published, newer.published, 'a tie: the newest published')
  const p1 = relay(0, { published: NOW - 1000, port: 9100 })
  const p2 = relay(0, { published: NOW - 1000, port: 9200 })
  const a = computeConsensus([vote(auths[0]!, [p1]), vote(auths[1]!, [p2])], 3).relays[0]!
  const b = computeConsensus([vote(auths[1]!, [p2]), vote(auths[0]!, [p1])], 3).relays[0]!
  const digest = (d: Descriptor) => sha256(Buffer.from(canonicalJson(d))).toString('hex')
  t.equal(a.port, (digest(p1) < digest(p2) ? p1 : p2).port, 'a full tie: the lowest digest (SHA-256 of the canonical descriptor)')
  t.equal(b.port, a.port, 'whatever the order')
})

t.test('method: any order of the same votes gives byte-identical bodies', async t => {
  const votes = [
    vote(auths[0]!, [R[0]!, R[1]!, R[2]!], { flags: (d) => d === R[1] ? ['Running'] : ALL }),
    vote(auths[1]!, [relay(0, { published: NOW - 500 }), R[2]!, R[3]!], { validAfter: PERIOD - 10_000 }),
    vote(auths[2]!, [R[1]!, R[3]!, R[2]!], { flags: () => ['Running', 'Stable'], server: null }),
  ]
  const digests = new Set(permutations(votes).map((p) => consensusDigest(computeConsensus(p, 3))))
  t.equal(digests.size, 1, `${permutations(votes).length} orders, one body`)
  const b = computeConsensus(votes, 3)
  t.equal(b.validAfter, PERIOD, 'validAfter: the lower median of the votes')
  t.equal(b.validUntil, PERIOD + 3600_000)
  t.equal(b.server?.fingerprint, server.fingerprint, 'the final hop named by 2 of 3')
  t.same(fpList(b), [...fpList(b)].sort(), 'relays sorted by fingerprint')
})

t.test('votes: signed by their authority, bounded, descriptors checked', async t => {
  const v = vote(auths[0]!, [R[0]!, R[1]!])
  const ok = verifyVote(JSON.parse(JSON.stringify(v)), fps[0]!, NOW)
  t.equal(ok.relays.length, 2)
  t.equal(codeOf(() => verifyVote(v, fps[1]!, NOW)), 'MM_ERR_VOTE', 'not the expected authority')
  t.equal(codeOf(() => verifyVote({ ...v, relays: [R[0]!] }, fps[0]!, NOW)), 'MM_ERR_VOTE', 'a relay dropped on the way')
  t.equal(codeOf(() => verifyVote({ ...v, flags: { ...v.flags, [R[0]!.fingerprint]: ['Running'] } }, fps[0]!, NOW)), 'MM_ERR_VOTE', 'a flag changed on the way')
  t.equal(codeOf(() => verifyVote({ ...v, relays: Array(10_001).fill(R[0]) }, fps[0]!, NOW)), 'MM_ERR_VOTE', 'more than 10,000 relays')
  for (const x of [null, [], 'x', { ...v, v: 2 }]) t.equal(codeOf(() => verifyVote(x, fps[0]!, NOW)), 'MM_ERR_VOTE', `junk: ${JSON.stringify(x)?.slice(0, 20)}`)
  const withBroken = vote(auths[0]!, [R[0]!, { ...R[1]!, port: 1 }])
  t.same(verifyVote(withBroken, fps[0]!, NOW).relays.map((r) => r.fingerprint), [R[0]!.fingerprint], 'a forged descriptor inside a signed vote is left out')
  // a vote's signature never passes as a consensus signature over the same fields
  const asConsensus = { v: 2, method: 1, validAfter: v.validAfter, validUntil: v.validUntil, relays: v.relays, server: v.server, flags: v.flags, signatures: [{ key: v.authority, signature: v.signature }] }
  t.equal(codeOf(() => verifyConsensus(asConsensus, fps[0]!, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'a vote signature is no consensus signature')
})

t.test('verification: the threshold of distinct pinned authorities, unknown keys ignored', async t => {
  const body = computeConsensus([vote(auths[0]!, R), vote(auths[1]!, R), vote(auths[2]!, R)], 3)
  const one = signConsensus(body, auths[0]!)
  const two = signConsensus(body, auths[0]!, auths[1]!)
  t.equal(codeOf(() => verifyConsensus(one, pin3, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', '1 of 3 pinned: refused')
  t.equal(verifyConsensus(JSON.parse(JSON.stringify(two)), pin3, NOW).relays.length, 4, '2 of 3 pinned: accepted')
  t.equal(codeOf(() => verifyConsensus(signConsensus(body, ...auths), pin3, NOW)), 'NO_THROW', '3 of 3')
  t.equal(codeOf(() => verifyConsensus({ ...one, signatures: [one.signatures[0]!, one.signatures[0]!] }, pin3, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'the same signature twice counts once')
  const again = { key: one.signatures[0]!.key, signature: signBody(body, auths[0]!).signature }
  t.equal(codeOf(() => verifyConsensus({ ...one, signatures: [one.signatures[0]!, again] }, pin3, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'one authority signing twice counts once')
  const stranger = ed25519KeyPair()
  t.equal(codeOf(() => verifyConsensus(signConsensus(body, auths[0]!, stranger), pin3, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'an unknown key\'s signature is ignored')
  t.equal(codeOf(() => verifyConsensus(signConsensus(body, stranger, auths[0]!, auths[2]!), pin3, NOW)), 'NO_THROW', '…and does not spoil the others')
  const junk = { ...two, signatures: [null, 'x', { key: 1 }, { key: 'AAAA', signature: 'AAAA' }, ...two.signatures] }
  t.equal(codeOf(() => verifyConsensus(junk, pin3, NOW)), 'NO_THROW', 'junk entries ignored')
  const badSig = { ...two, signatures: [two.signatures[0]!, { ...two.signatures[1]!, signature: two.signatures[0]!.signature }] }
  t.equal(codeOf(() => verifyConsensus(badSig, pin3, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'a pinned key with another\'s signature does not count')
  t.equal(codeOf(() => verifyConsensus(one, authorityPin(pin3, 1), NOW)), 'NO_THROW', '--directory-threshold 1: one signer is enough')
  t.equal(codeOf(() => verifyConsensus(two, authorityPin(pin3, 3), NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', '--directory-threshold 3: two are not')
  t.equal(codeOf(() => verifyConsensus(one, fps[0]!, NOW)), 'NO_THROW', 'one pinned key, threshold 1: as before')
  t.equal(codeOf(() => verifyConsensus(one, fps[0]!.toUpperCase(), NOW)), 'NO_THROW', 'in capitals too')
})

t.test('pins: --directory-key FP[,FP…] and --directory-threshold K', async t => {
  t.same(authorityPin(pin3), { keys: fps, threshold: 2 }, 'three keys: a majority, 2')
  t.same(authorityPin(` ${fps[0]!.toUpperCase()} `), { keys: [fps[0]], threshold: 1 }, 'one key: 1')
  t.equal(authorityPin([...fps, ...[1, 2].map(() => directoryFingerprint(ed25519KeyPair().publicKey))]).threshold, 3, 'five keys: 3')
  t.equal(serverAuthority(pin3), fps[0], 'the first pinned key is the server\'s (sealed sender\'s root)')
  for (const [k, th, why] of [[`${fps[0]},${fps[0]}`, undefined, 'a key twice'], ['abc', undefined, 'not 64 hex'], ['', undefined, 'none'], [pin3, 0, 'threshold 0'], [pin3, 4, 'threshold above n'], [pin3, 1.5, 'not an integer']] as const) {
    t.equal(codeOf(() => authorityPin(k, th)), 'MM_ERR_CONFIG', why)
  }
  t.equal(codeOf(() => authorityPin(Array.from({ length: 17 }, () => directoryFingerprint(ed25519KeyPair().publicKey)))), 'MM_ERR_CONFIG', 'more than 16 keys')
})

t.test('a hostile authority listing only its own relays is outvoted, and what it signs alone is refused', async t => {
  const [honest1, honest2, hostile] = auths as [typeof auths[0], typeof auths[0], typeof auths[0]]
  const own = [R[3]!] // the hostile operator's relay; it drops every honest one from its vote
  const honestRelays = [R[0]!, R[1]!, R[2]!]
  const votes = [vote(honest1, honestRelays), vote(honest2, honestRelays), vote(hostile, own, { flags: () => ALL })]
  const b = computeConsensus(votes, 3)
  t.same(fpList(b), sorted(honestRelays), 'the consensus lists the honest relays; the hostile one\'s own relay is not listed')
  const honestDoc = signConsensus(b, honest1, honest2)
  t.equal(verifyConsensus(honestDoc, pin3, NOW).relays.length, 3, 'the honest majority\'s document verifies')
  // the hostile authority computes its own body from its own vote (or any body it likes) and signs it
  const forged = signConsensus({ ...computeConsensus([votes[2]!], 1), validAfter: PERIOD + 10_000 }, hostile)
  t.equal(codeOf(() => verifyConsensus(forged, pin3, NOW)), 'MM_ERR_CONSENSUS_THRESHOLD', 'a consensus the hostile authority signs alone is refused, whatever it lists')
  // nor can it lend its signature to an honest authority's body it did not compute: it needs a second honest signer
  t.equal(codeOf(() => verifyConsensus(signConsensus(computeConsensus([votes[0]!, votes[2]!], 3), honest1, hostile), pin3, NOW)), 'NO_THROW', 'with one honest signer on a body from an honest and its vote: 2 of 3, as the threshold says')
  t.same(fpList(computeConsensus([votes[0]!, votes[2]!], 3)), [], '…and that body lists none of its relays, nor any honest one (no majority)')
})
