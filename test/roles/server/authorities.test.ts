// Several directory authorities (docs/PROTOCOL.md §7.8), as Directory objects on one fake
// clock trading votes and signatures by hand (what syncPeers does over HTTPS): they
// compute byte-identical bodies and the consensus carries every signature; a heartbeat
// does not change a vote within its period; a hostile authority listing only its own
// relay is outvoted, and the consensus it serves alone is refused by the client's own
// verification; a peer's signature over a body this authority did not compute is not
// taken; one authority alone serves nothing until a majority has signed.
import t from 'tap'
import { ed25519KeyPair } from '../../../src/onion/crypto/primitives.js'
import { directoryFingerprint, signConsensus, verifyConsensus } from '../../../src/onion/directory/consensus.js'
import { signDescriptor, type Descriptor, type HopRole } from '../../../src/onion/directory/descriptor.js'
import { loadOrCreateIdentity, type HopIdentity } from '../../../src/roles/common/identity.js'
import { Directory } from '../../../src/roles/server/directory.js'
import { tmp } from '../../helpers/net.js'

const START = 1_800_000_000_000
const ids: HopIdentity[] = [0, 1, 2, 3, 4].map(() => loadOrCreateIdentity(tmp('mm-auth-id-'), '127.0.0.1'))
const [A, B, C, EVIL, G] = ids as [HopIdentity, HopIdentity, HopIdentity, HopIdentity, HopIdentity]

function desc (id: HopIdentity, at: number, role: HopRole = 'relay'): Descriptor {
  return signDescriptor({
    v: 1, role, nickname: 'n', host: '127.0.0.1', port: 9000 + ids.indexOf(id),
    identityKey: id.publicDer.toString('base64'), fingerprint: id.fingerprintHex,
    tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint, published: at, expires: at + 3 * 3600_000,
  }, id.privateDer)
}

/** three authorities on one clock; the first lists the final hop G itself (the server's), the others learn it from its vote */
function authorities () {
  const clock = { now: START + 1234 }
  const keys = [ed25519KeyPair(), ed25519KeyPair(), ed25519KeyPair()]
  const fps = keys.map((k) => directoryFingerprint(k.publicKey))
  const serverD = desc(G, clock.now, 'server')
  const dirs = keys.map((key, j) => new Directory({
    key, now: () => clock.now, privateNetwork: true,
    peers: fps.flatMap((fingerprint, x) => (x === j ? [] : [{ url: `https://peer${x}.invalid`, fingerprint }])),
    ...(j === 0 ? { serverDescriptor: () => serverD } : { gatewayFingerprint: G.fingerprintHex }),
  }))
  /** one round of what syncPeers does, for every authority: fetch each peer's vote, then offer its signatures */
  const sync = (among = dirs) => {
    for (const d of among) {
      const states = among.filter((p) => p !== d).map((p) => { d.takeVote(p.fingerprint, JSON.parse(p.vote().text)); return p.state() })
      for (const st of states) d.takeSignatures(st.digest, JSON.parse(JSON.stringify(st.signatures)))
    }
  }
  return { clock, keys, fps, dirs, sync, pin: fps.join(',') }
}

t.test('three authorities compute one body and the consensus carries three signatures', async (t) => {
  const { clock, dirs, sync, pin } = authorities()
  for (const d of dirs) for (const id of [A, B, C]) d.accept(desc(id, clock.now))
  t.equal((() => { try { dirs[1]!.consensus(); return 'served' } catch (err) { return (err as any).code } })(), 'MM_ERR_NO_CONSENSUS', 'before any peer signed: nothing served (1 of 3 is below a majority)')
  sync()
  sync()
  const docs = dirs.map((d) => d.consensus().doc)
  t.same(new Set(docs.map((d) => JSON.stringify({ ...d, signatures: [] }))).size, 1, 'byte-identical bodies at every authority')
  for (const [j, d] of docs.entries()) t.equal(d.signatures.length, 3, `authority ${j + 1} serves it with three signatures`)
  const c = verifyConsensus(JSON.parse(dirs[2]!.consensus().text), pin, clock.now)
  t.equal(c.relays.length, 3)
  t.equal(c.server?.fingerprint, G.fingerprintHex, 'the final hop: the server\'s authority lists it, the others took it from its vote')
  t.equal(c.validAfter, START, 'period-aligned validAfter')

  // heartbeats within the period change no vote, so the signed document stays
  const before = dirs[0]!.consensus().text
  clock.now += 3000
  for (const d of dirs) d.accept(desc(A, clock.now))
  sync()
  t.equal(dirs[0]!.consensus().text, before, 'a heartbeat waits for the next period')
  // the next period: new votes, a new body, signed again by all three
  clock.now = START + 10_000 + 500
  for (const d of dirs) for (const id of [A, B, C]) d.accept(desc(id, clock.now))
  sync()
  sync()
  const next = dirs[1]!.consensus().doc
  t.equal(next.validAfter, START + 10_000, 'the next period')
  t.equal(next.signatures.length, 3)
  t.equal(next.relays.find((r) => r.fingerprint === A.fingerprintHex)?.published, clock.now, 'with the newest heartbeat')
})

t.test('a relay known to one authority only is not listed; two of three suffice', async (t) => {
  const { clock, dirs, sync, pin } = authorities()
  for (const d of dirs) d.accept(desc(A, clock.now))
  dirs[0]!.accept(desc(B, clock.now))
  dirs[1]!.accept(desc(B, clock.now))
  dirs[2]!.accept(desc(C, clock.now))
  sync()
  sync()
  const c = verifyConsensus(JSON.parse(dirs[0]!.consensus().text), pin, clock.now)
  t.same(c.relays.map((r) => r.fingerprint).sort(), [A.fingerprintHex, B.fingerprintHex].sort(), 'A (3 votes) and B (2) listed; C (1) not')
})

t.test('one authority down: the other two still agree and serve (2 of 3); one left alone serves only what it had', async (t) => {
  const { clock, dirs, sync, pin } = authorities()
  for (const d of dirs) d.accept(desc(A, clock.now))
  sync(dirs.slice(0, 2))
  sync(dirs.slice(0, 2))
  const c = verifyConsensus(JSON.parse(dirs[1]!.consensus().text), pin, clock.now)
  t.equal(c.signatures.length, 2, 'two signatures')
  t.equal(c.relays.length, 1, 'A listed by both live authorities (a majority of three)')
  t.equal((() => { try { dirs[2]!.consensus(); return 'served' } catch (err) { return (err as any).code } })(), 'MM_ERR_NO_CONSENSUS', 'the isolated third serves nothing it signed alone')
})

t.test('a peer that stops answering: its last vote stops counting after three rounds, and the others agree again', async (t) => {
  const { clock, dirs, sync, pin } = authorities()
  const [a, b, c] = dirs as [Directory, Directory, Directory]
  for (const d of dirs) d.accept(desc(A, clock.now))
  sync()
  sync()
  t.equal(a.consensus().doc.signatures.length, 3)
  // a and c find a new relay C; c dies right after a fetched its new vote, b still holds its old one
  a.accept(desc(C, clock.now))
  c.accept(desc(C, clock.now))
  a.takeVote(c.fingerprint, JSON.parse(c.vote().text))
  b.takeVote(a.fingerprint, JSON.parse(a.vote().text))
  const stateOf = (d: Directory) => d.state().digest
  t.not(stateOf(a), stateOf(b), 'a (C: 2 votes, listed) and b (C: 1 vote) compute different bodies: no consensus can gather two signatures')
  for (let round = 0; round < 3; round++) { a.peerUnreachable(c.fingerprint); b.peerUnreachable(c.fingerprint) }
  t.equal(stateOf(a), stateOf(b), 'after three silent rounds neither counts c\'s vote: one body again')
  sync([a, b])
  const doc = verifyConsensus(JSON.parse(a.consensus().text), pin, clock.now)
  t.ok(doc.signatures.length >= 2, 'served, signed by at least the two live authorities')
  t.same(doc.relays.map((r) => r.fingerprint), [A.fingerprintHex], 'listing what a majority of the three found Running (C only by a now)')
  b.peerUnreachable(c.fingerprint)
  b.peerReachable(c.fingerprint)
  b.peerUnreachable(c.fingerprint)
  t.equal(stateOf(a), stateOf(b), 'a round that answered starts the count over')
})

t.test('a hostile authority listing only its own relay is outvoted, and its consensus alone is refused', async (t) => {
  const { clock, keys, dirs, sync, pin } = authorities()
  const [h1, h2, hostile] = dirs as [Directory, Directory, Directory]
  for (const d of [h1, h2]) for (const id of [A, B, C]) d.accept(desc(id, clock.now))
  hostile.accept(desc(EVIL, clock.now)) // it refuses every honest relay and lists its own
  sync()
  sync()
  const c = verifyConsensus(JSON.parse(h1.consensus().text), pin, clock.now)
  t.same(c.relays.map((r) => r.fingerprint).sort(), [A, B, C].map((x) => x.fingerprintHex).sort(), 'the honest relays, not the hostile one\'s')
  t.equal(c.signatures.length, 3, 'the hostile authority computed the same body from the same votes, and signed it too')
  // what it can do alone: sign a body listing only its relay (its own vote as the whole consensus)
  const alone = signConsensus({ ...c, relays: [desc(EVIL, clock.now)], flags: { [EVIL.fingerprintHex]: ['Guard', 'Running', 'Stable'] }, validAfter: c.validAfter + 10_000 }, keys[2]!)
  t.equal((() => { try { verifyConsensus(JSON.parse(JSON.stringify(alone)), pin, clock.now); return 'accepted' } catch (err) { return (err as any).code } })(), 'MM_ERR_CONSENSUS_THRESHOLD', 'refused by the client\'s verification')
  // and an honest authority does not take its signature over a body it did not compute
  const h1Sigs = h1.consensus().doc.signatures.length
  t.equal(h1.takeSignatures('00'.repeat(32), alone.signatures), h1Sigs, 'a signature over another digest is not taken')
})

t.test('configuration: peers distinct and not this authority', async (t) => {
  const key = ed25519KeyPair()
  const me = directoryFingerprint(key.publicKey)
  const other = directoryFingerprint(ed25519KeyPair().publicKey)
  const make = (peers: string[]) => () => new Directory({ key, peers: peers.map((fingerprint) => ({ url: 'https://x.invalid', fingerprint })) })
  t.throws(make([me]), { code: 'MM_ERR_CONFIG' }, 'itself as a peer')
  t.throws(make([other, other]), { code: 'MM_ERR_CONFIG' }, 'a peer twice')
  t.throws(make(Array.from({ length: 16 }, () => directoryFingerprint(ed25519KeyPair().publicKey))), { code: 'MM_ERR_CONFIG' }, 'more than 16 authorities')
  const d = make([other])()
  t.equal(d.threshold, 2, 'two authorities: both must sign')
  t.throws(() => d.takeVote(directoryFingerprint(ed25519KeyPair().publicKey), {}), { code: 'MM_ERR_CONFIG' }, 'a vote from no peer')
  t.throws(() => d.takeVote(other, { v: 1 }), { code: 'MM_ERR_VOTE' }, 'a malformed vote')
})
