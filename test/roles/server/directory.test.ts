// The Directory class (docs/ARCHITECTURE.md §7) on a fake clock: heartbeats keep a relay
// listed, silence past staleMs drops it, the consensus is signed with the
// directory key and carries its validity period, a listed address cannot be
// taken by another identity, and a server descriptor is accepted only from the
// pinned gateway fingerprint. The address rules (PROTOCOL §7.1): IP literals only,
// public addresses only outside a private network, at most 2 relays per IP.
import t from 'tap'
import { ed25519KeyPair } from '../../../src/onion/crypto/primitives.js'
import { directoryFingerprint, verifyConsensus } from '../../../src/onion/directory/consensus.js'
import { signDescriptor, type Descriptor, type HopRole } from '../../../src/onion/directory/descriptor.js'
import { loadOrCreateIdentity, type HopIdentity } from '../../../src/roles/common/identity.js'
import { Directory, MAX_PER_ADDRESS, type DirectoryInit } from '../../../src/roles/server/directory.js'
import { tmp } from '../../helpers/net.js'

const START = 1_800_000_000_000
const STALE = 30_000

const ids: HopIdentity[] = [0, 1, 2, 3].map(() => loadOrCreateIdentity(tmp('mm-dir-id-'), '127.0.0.1'))
const [A, B, C, G] = ids

function desc (id: HopIdentity, at: number, o: { host?: string, port?: number, role?: HopRole, lifetime?: number } = {}): Descriptor {
  return signDescriptor({
    v: 1, role: o.role ?? 'relay', nickname: 'n', host: o.host ?? '127.0.0.1', port: o.port ?? 9000 + ids.indexOf(id),
    identityKey: id.publicDer.toString('base64'), fingerprint: id.fingerprintHex,
    tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint, published: at, expires: at + (o.lifetime ?? 3 * 3600_000),
  }, id.privateDer)
}

function setup (init: Partial<DirectoryInit> = {}) {
  const clock = { now: START }
  const key = ed25519KeyPair()
  const dir = new Directory({ key, staleMs: STALE, now: () => clock.now, privateNetwork: true, ...init })
  const listed = () => dir.consensus().doc.relays.map((r) => r.fingerprint)
  return { clock, key, dir, listed }
}

/** the error `fn` throws (or null) */
function thrown (fn: () => unknown): any {
  try { fn() } catch (err) { return err }
  return null
}

t.test('heartbeats keep a relay listed; silence past staleMs drops it', async (t) => {
  const { clock, dir, listed } = setup()
  dir.accept(desc(A, clock.now))
  dir.accept(desc(B, clock.now))
  t.same(listed().sort(), [A.fingerprintHex, B.fingerprintHex].sort())

  // A heartbeats every 20 s for two minutes; B stays silent
  for (let i = 0; i < 6; i++) {
    clock.now += 20_000
    dir.accept(desc(A, clock.now))
    t.ok(listed().includes(A.fingerprintHex), `A still listed at +${(i + 1) * 20} s`)
  }
  t.same(listed(), [A.fingerprintHex], 'B dropped out')
  t.equal(dir.relayCount, 1)
})

t.test('a stale relay drops out exactly after staleMs', async (t) => {
  const { clock, dir, listed } = setup()
  dir.accept(desc(A, clock.now))
  listed() // cache a consensus
  clock.now += STALE
  t.same(listed(), [A.fingerprintHex], 'still listed at exactly staleMs')
  clock.now += 1
  t.same(listed(), [], 'gone 1 ms later, even though a cached consensus listed it')
  t.equal(dir.relayCount, 0)
  // it may come back with a fresh descriptor
  dir.accept(desc(A, clock.now))
  t.same(listed(), [A.fingerprintHex], 'and it comes back with a fresh descriptor')
})

t.test('a descriptor that expires leaves the consensus even with heartbeats', async (t) => {
  const { clock, dir, listed } = setup()
  dir.accept(desc(A, clock.now, { lifetime: 15_000 }))
  clock.now += 15_000
  t.same(listed(), [], 'expired')
  t.equal(thrown(() => dir.accept(desc(A, clock.now - 20_000, { lifetime: 15_000 })))?.code, 'MM_ERR_DESCRIPTOR', 'an expired descriptor is refused')
})

t.test('a replayed heartbeat (a copy of the listed descriptor) does not keep a dead relay listed', async (t) => {
  // anyone can copy a relay's descriptor out of the consensus and post it again;
  // only a relay that signs fresh descriptors is alive
  const { clock, dir, listed } = setup()
  const copy = desc(A, clock.now)
  dir.accept(copy)
  for (let i = 0; i < 4; i++) {
    clock.now += 10_000
    try { dir.accept(copy) } catch { /* refusing the copy is fine too */ }
  }
  t.same(listed(), [], 'A, silent for 40 s, is not listed')
  const err = thrown(() => dir.accept(copy))
  t.equal(err?.code, 'MM_ERR_DESCRIPTOR_STALE', 'nor does the copy bring it back once it dropped out')
  t.equal(err?.statusCode, 409)
  t.same(listed(), [])
  dir.accept(desc(A, clock.now))
  t.same(listed(), [A.fingerprintHex], 'a freshly signed descriptor does')
  t.equal(thrown(() => dir.accept(desc(A, clock.now - 60_000)))?.code, 'MM_ERR_DESCRIPTOR_STALE', 'an older descriptor than the one listed is refused')
})

t.test('the consensus is signed with the directory key and has a validity period', async (t) => {
  const { clock, key, dir } = setup({ validityMs: 600_000 })
  dir.accept(desc(A, clock.now))
  const { doc, text } = dir.consensus()
  const fpr = directoryFingerprint(key.publicKey)
  t.equal(dir.fingerprint, fpr)
  t.equal(doc.validAfter, clock.now - (clock.now % 10_000), 'validAfter: the start of the voting period')
  t.equal(doc.validUntil, doc.validAfter + 600_000)
  t.same(doc.signatures.map((s) => s.key), [key.publicKey.toString('base64')], 'one authority: its own signature')
  const verified = verifyConsensus(JSON.parse(text), fpr, clock.now)
  t.same(verified.relays.map((r) => r.fingerprint), [A.fingerprintHex], 'verifies against the pinned fingerprint')

  t.equal(thrown(() => verifyConsensus(JSON.parse(text), directoryFingerprint(ed25519KeyPair().publicKey), clock.now))?.code, 'MM_ERR_CONSENSUS_THRESHOLD', 'not under another pinned key')
  const tampered = { ...JSON.parse(text), validUntil: clock.now + 10 * 600_000 }
  t.equal(thrown(() => verifyConsensus(tampered, fpr, clock.now))?.code, 'MM_ERR_CONSENSUS_THRESHOLD', 'an extended validity breaks the signature')
  const dropped = { ...JSON.parse(text), relays: [] }
  t.equal(thrown(() => verifyConsensus(dropped, fpr, clock.now))?.code, 'MM_ERR_CONSENSUS_THRESHOLD', 'a dropped relay breaks the signature')
  t.equal(thrown(() => verifyConsensus(JSON.parse(text), fpr, doc.validUntil + 1))?.code, 'MM_ERR_CONSENSUS', 'expired after validUntil')

  // re-signed when the set changes, and at least every voting period (10 s) while it does not
  const first = dir.consensus().text
  clock.now += 3_000
  t.equal(dir.consensus().text, first, 'the same document within the period')
  clock.now += 1000
  dir.accept(desc(A, clock.now))
  t.equal(dir.consensus().text, first, 'a heartbeat waits for the next period')
  dir.accept(desc(B, clock.now))
  t.not(dir.consensus().text, first, 're-signed when a relay joins')
  t.equal(dir.consensus().doc.validAfter, doc.validAfter, 'in the same period')
  clock.now += 10_000
  dir.accept(desc(A, clock.now))
  dir.accept(desc(B, clock.now))
  t.equal(dir.consensus().doc.validAfter, doc.validAfter + 10_000, 're-signed in the next period')
  t.equal(dir.consensus().doc.relays.find((r) => r.fingerprint === A.fingerprintHex)?.published, clock.now, 'with the newest heartbeat')
})

t.test('another relay cannot take a listed address', async (t) => {
  const { clock, dir, listed } = setup()
  dir.accept(desc(A, clock.now, { host: '127.0.0.11', port: 7001 }))
  const err = thrown(() => dir.accept(desc(B, clock.now + 1, { host: '127.0.0.11', port: 7001 })))
  t.equal(err?.code, 'MM_ERR_ADDRESS_TAKEN', 'a second identity at the same host:port is refused')
  t.equal(err?.statusCode, 409)
  t.same(listed(), [A.fingerprintHex], 'the listed relay keeps its address')
  dir.accept(desc(B, clock.now, { host: '127.0.0.11', port: 7002 }))
  t.same(listed().sort(), [A.fingerprintHex, B.fingerprintHex].sort(), 'another port on the same host is fine')

  // once A is stale, its address is free
  clock.now += STALE + 1
  dir.accept(desc(B, clock.now, { host: '127.0.0.11', port: 7002 }))
  dir.accept(desc(C, clock.now, { host: '127.0.0.11', port: 7001 }))
  t.same(listed().sort(), [B.fingerprintHex, C.fingerprintHex].sort(), 'a stale relay\'s address can be taken')
})

t.test('a stale relay frees its slot in a full directory', async (t) => {
  const { clock, dir } = setup({ maxRelays: 2 })
  dir.accept(desc(A, clock.now))
  dir.accept(desc(B, clock.now))
  t.equal(thrown(() => dir.accept(desc(C, clock.now)))?.code, 'MM_ERR_BUSY', 'full')
  clock.now += STALE + 1
  // nobody read the consensus in between: the stale entries must not hold their slots
  t.doesNotThrow(() => dir.accept(desc(C, clock.now)), 'a new relay is accepted once the others are stale')
  t.equal(dir.relayCount, 1)
})

t.test('server descriptors are accepted only from the pinned gateway fingerprint', async (t) => {
  t.test('no gateway pinned (the server runs its own final hop)', async (t) => {
    const own = desc(G, START, { role: 'server', port: 7000 })
    const { dir } = setup({ serverDescriptor: () => own })
    const err = thrown(() => dir.accept(desc(A, START, { role: 'server' })))
    t.equal(err?.code, 'MM_ERR_DESCRIPTOR_REFUSED')
    t.equal(err?.statusCode, 403)
    t.equal(dir.consensus().doc.server?.fingerprint, G.fingerprintHex, 'the consensus lists its own final hop')
  })
  t.test('split mode: the pinned gateway', async (t) => {
    const { clock, dir } = setup({ gatewayFingerprint: G.fingerprintHex })
    t.equal(dir.consensus().doc.server, null, 'no final hop until the gateway posts')
    t.equal(thrown(() => dir.accept(desc(A, clock.now, { role: 'server' })))?.code, 'MM_ERR_DESCRIPTOR_REFUSED', 'another identity cannot be the server')
    // a descriptor naming the gateway's fingerprint but signed by another key
    const forged = signDescriptor({ ...desc(G, clock.now, { role: 'server' }), signature: undefined } as any, A.privateDer)
    t.equal(thrown(() => dir.accept(forged))?.code, 'MM_ERR_DESCRIPTOR', 'nor can one that claims its fingerprint')
    t.equal(dir.consensus().doc.server, null)
    dir.accept(desc(G, clock.now, { role: 'server', port: 7000 }))
    t.equal(dir.consensus().doc.server?.fingerprint, G.fingerprintHex, 'the gateway is the final hop')
    t.equal(dir.consensus().doc.relays.length, 0, 'and not a relay')
    const copy = dir.consensus().doc.server!
    clock.now += 20_000
    t.equal(thrown(() => dir.accept(copy))?.code, 'MM_ERR_DESCRIPTOR_STALE', 'a copy of the listed gateway descriptor is no heartbeat')
    clock.now += 11_000
    t.equal(dir.consensus().doc.server, null, 'a silent gateway drops out like a relay')
  })
})

/** a verified-looking descriptor for `admit` (which runs after the signature check): thousands without an RSA key each */
const unsigned = (i: number, host: string, at: number): Descriptor => ({
  v: 1, role: 'relay', nickname: `s${i}`, host, port: 10_000 + i, identityKey: '', fingerprint: 'e' + i.toString(16).padStart(63, '0'),
  tlsCert: '', tlsFingerprint: '0'.repeat(64), published: at, expires: at + 3600_000, signature: '',
})

t.test('5,000 relays on one IP: 2 are listed, the rest refused MM_ERR_ADDRESS_LIMIT; the IPv6 and mapped forms are the same IP', async (t) => {
  const { clock, dir, listed } = setup({ privateNetwork: false })
  const codes = new Map<string, number>()
  for (let i = 0; i < 5000; i++) {
    // one IP written three ways: compared as parsed addresses, never as strings
    const host = i % 2 === 0 ? '2001:db8::7' : '2001:db8:0:0:0:0:0:7'
    const code = thrown(() => dir.admit(unsigned(i, host, clock.now)))?.code ?? 'listed'
    codes.set(code, (codes.get(code) ?? 0) + 1)
  }
  t.same(Object.fromEntries(codes), { listed: MAX_PER_ADDRESS, MM_ERR_ADDRESS_LIMIT: 5000 - MAX_PER_ADDRESS })
  t.equal(listed().length, 2, 'the consensus lists 2')
  const err = thrown(() => dir.admit(unsigned(9999, '2001:db8::7', clock.now)))
  t.equal(err?.statusCode, 409)
  t.doesNotThrow(() => dir.admit(unsigned(0, '2001:db8::7', clock.now + 1)), 'a listed relay at that IP still heartbeats')
  dir.admit(unsigned(6000, '192.0.2.44', clock.now))
  dir.admit(unsigned(6001, '192.0.2.44', clock.now))
  t.equal(thrown(() => dir.admit(unsigned(6002, '::ffff:192.0.2.44', clock.now)))?.code, 'MM_ERR_ADDRESS_LIMIT', 'IPv4-mapped IPv6 counts as its IPv4 address')
  t.doesNotThrow(() => dir.admit(unsigned(6003, '192.0.2.45', clock.now)), 'the next address has its own 2')
  // slots free up when relays go stale
  clock.now += STALE + 1
  t.doesNotThrow(() => dir.admit(unsigned(7000, '2001:db8::7', clock.now)), 'once the listed ones are stale, a new one may take the IP')
  t.same(setup({ privateNetwork: true, maxPerAddress: 3 }).dir.fingerprint.length, 64)
})

t.test('private, loopback and link-local addresses are refused outside a private network', async (t) => {
  const pub = setup({ privateNetwork: false })
  for (const host of ['127.0.0.1', '10.1.2.3', '192.168.0.5', '172.16.9.9', '169.254.169.254', '0.0.0.0', '224.0.0.1', '::1', 'fd00::5', 'fe80::1', '::']) {
    const err = thrown(() => pub.dir.admit(unsigned(1, host, pub.clock.now)))
    t.same({ code: err?.code, status: err?.statusCode }, { code: 'MM_ERR_ADDRESS_PRIVATE', status: 403 }, `${host} refused`)
  }
  t.equal(thrown(() => pub.dir.accept(desc(A, pub.clock.now)))?.code, 'MM_ERR_ADDRESS_PRIVATE', 'a signed descriptor on 127.0.0.1 too')
  t.same(pub.listed(), [])
  const dev = setup({ privateNetwork: true })
  dev.dir.accept(desc(A, dev.clock.now))
  for (let i = 0; i < 5; i++) dev.dir.admit(unsigned(i, '127.0.0.1', dev.clock.now))
  t.equal(dev.listed().length, 6, 'a private network lists loopback relays, many per address (distinct ports)')
})

t.test('hostnames are refused at registration', async (t) => {
  const { clock, dir, listed } = setup()
  for (const host of ['r1.evil.example', 'r2.evil.example', 'localhost']) {
    t.equal(thrown(() => dir.accept(desc(A, clock.now, { host })))?.code, 'MM_ERR_DESCRIPTOR', `${host} refused`)
  }
  t.equal(thrown(() => dir.accept(desc(A, clock.now, { host: '2001:DB8::1' })))?.code, 'MM_ERR_DESCRIPTOR', 'a non-canonical IPv6 text is refused (one text per address)')
  t.same(listed(), [])
})

t.test('flags: Running when probed, Stable and Guard only after an unbroken run of the configured time; a failed probe starts it over', async (t) => {
  const { clock, dir } = setup({ stableAfterMs: 60_000, guardAfterMs: 120_000, reprobeMs: 25_000 })
  const flags = () => {
    const c = verifyConsensus(JSON.parse(dir.consensus().text), dir.fingerprint, clock.now)
    return c.relays.some((r) => r.fingerprint === A.fingerprintHex) ? c.flags[A.fingerprintHex] : 'unlisted'
  }
  /** heartbeats every 10 s for `ms`, answering every due probe with `ok` */
  const live = (ms: number, ok = true) => {
    for (let left = ms; left > 0; left -= 10_000) {
      clock.now += 10_000
      dir.accept(desc(A, clock.now))
      for (const d of dir.dueProbes()) dir.probed(d, ok)
    }
  }
  dir.accept(desc(A, clock.now))
  t.same(flags(), ['Running'], 'listed a moment ago: Running only (no fresh relay is anyone\'s guard)')
  live(50_000)
  t.same(flags(), ['Running'], 'at 50 s: not yet Stable')
  live(10_000)
  t.same(flags(), ['Running', 'Stable'], 'at 60 s: Stable')
  live(50_000)
  t.same(flags(), ['Running', 'Stable'], 'at 110 s: not yet Guard')
  live(10_000)
  t.same(flags(), ['Guard', 'Running', 'Stable'], 'at 120 s: Guard')

  live(30_000, false)
  t.equal(flags(), 'unlisted', 'an unreachable probe takes it out of the consensus (not Running), heartbeats or not')
  live(30_000)
  t.same(flags(), ['Running'], 'reachable again: Running, and its run starts over')
  live(110_000)
  t.same(flags(), ['Running', 'Stable'], 'Stable again, not yet Guard, 110 s or so into the new run')
  live(30_000)
  t.same(flags(), ['Guard', 'Running', 'Stable'], 'Guard again after a full unbroken run')

  // silence past staleMs ends the run too: back with a fresh descriptor, it starts from Running
  clock.now += STALE + 1
  dir.accept(desc(A, clock.now))
  t.same(flags(), ['Running'], 'a relay that dropped out starts over')
})

t.test('flags: production defaults are days (dir-spec §3.4.2), a private network gives them at once', async (t) => {
  const pub = setup({ privateNetwork: false })
  {
    pub.dir.admit(unsigned(1, '192.0.2.9', pub.clock.now))
    const fp = unsigned(1, '192.0.2.9', 0).fingerprint
    t.same(pub.dir.consensus().doc.flags[fp], ['Running'], 'a new public relay: Running only')
  }
  const dev = setup({ privateNetwork: true })
  dev.dir.accept(desc(A, dev.clock.now))
  t.same(dev.dir.consensus().doc.flags[A.fingerprintHex], ['Guard', 'Running', 'Stable'], 'a devnet relay is a guard at once (configurable with --guard-after)')
})
