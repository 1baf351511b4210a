// ConsensusSource (src/roles/common/consensus-source.ts) against the real directory
// routes over HTTPS, on a fake clock: a hop whose first post found no directory is
// listed one warm-up step (1 s) later, not a whole heartbeat (5 s) later; while warm it
// refreshes the consensus every second but posts its descriptor only every heartbeat;
// once warm, both happen every heartbeat.
import t from 'tap'
import Fastify from 'fastify'
import { createServer } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { ed25519KeyPair } from '../../../src/onion/crypto/primitives.js'
import { ConsensusSource } from '../../../src/roles/common/consensus-source.js'
import { hopDescriptor, loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { installErrorHandler } from '../../../src/roles/common/http-errors.js'
import { Directory, directoryRoutes } from '../../../src/roles/server/directory.js'
import { silentLogger } from '../../../src/log.js'
import { FakeClock } from '../../helpers/fake-clock.js'
import { tmp } from '../../helpers/net.js'

/** waits in real time for a condition on real I/O (loopback HTTPS), up to 10 s */
async function eventually (fn: () => boolean): Promise<boolean> {
  const end = Date.now() + 10_000
  while (!fn() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 5))
  return fn()
}

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise((resolve) => s.close(resolve))
  return port
}

t.test('a hop that started before its directory is listed a second later; heartbeats stay every 5 s', async (t) => {
  const hop = loadOrCreateIdentity(tmp('mm-csrc-hop-'), '127.0.0.1')
  const dirId = loadOrCreateIdentity(tmp('mm-csrc-dir-'), '127.0.0.1')
  const directory = new Directory({ key: ed25519KeyPair(), privateNetwork: true })
  const port = await freePort()
  const clock = new FakeClock()
  const src = new ConsensusSource({
    directory: `https://127.0.0.1:${port}`,
    directoryKey: directory.fingerprint,
    log: silentLogger,
    descriptor: () => hopDescriptor(hop, { role: 'relay', nickname: 'early', host: '127.0.0.1', port: 9, lifetimeMs: 3600_000 }),
    clock,
  })
  t.teardown(() => src.stop())
  const refreshed = () => clock.pending === 1 // between refreshes exactly one timer waits

  await src.start() // the directory is not up: the first post and fetch fail
  t.equal(src.current, null, 'no consensus while the directory is down')
  t.ok(refreshed(), 'the next refresh is scheduled')

  const app = Fastify({ logger: false, https: { key: dirId.tlsKeyPem, cert: dirId.tlsCertPem } })
  installErrorHandler(app)
  const requests: string[] = []
  app.addHook('onRequest', async (req) => { requests.push(req.method) })
  await app.register(directoryRoutes, { directory, probe: null })
  await app.listen({ host: '127.0.0.1', port })
  t.teardown(() => app.close())

  const started = clock.now()
  await clock.advance(1000)
  t.ok(await eventually(() => src.current !== null && refreshed()), 'one warm-up step later a consensus is held')
  t.same(src.current!.relays.map((r) => r.fingerprint), [hop.fingerprintHex], 'and it lists this hop (its post went first)')
  t.equal(clock.now() - started, 1000, 'listed 1 s after the directory came up, not a 5 s heartbeat later')
  t.same(requests, ['POST', 'GET'], 'one post, one fetch')

  /* warm (the first 30 s): the consensus every second, the descriptor every 5 s */
  requests.length = 0
  const steps: boolean[] = []
  for (let i = 0; i < 10; i++) {
    await clock.advance(1000)
    steps.push(await eventually(refreshed))
  }
  t.same(steps, Array(10).fill(true), 'each warm step ends with the next one scheduled')
  t.equal(requests.filter((m) => m === 'GET').length, 10, 'ten fetches in 10 s while warm')
  t.equal(requests.filter((m) => m === 'POST').length, 2, 'but two posts: heartbeats stay every 5 s')

  /* past the warm-up: every 5 s for both */
  while (clock.now() - started < 31_000) {
    await clock.advance(1000)
    if (!await eventually(refreshed)) break
  }
  requests.length = 0
  for (let i = 0; i < 4; i++) {
    await clock.advance(5000)
    await eventually(refreshed)
  }
  t.same(requests, ['POST', 'GET', 'POST', 'GET', 'POST', 'GET', 'POST', 'GET'], 'after the warm-up: a post and a fetch every 5 s, nothing between')
})

t.test('a relay never goes back to an older consensus, across a restart; a collapse is kept back', async (t) => {
  const dirId = loadOrCreateIdentity(tmp('mm-csrc-dir2-'), '127.0.0.1')
  const key = ed25519KeyPair()
  const stateFile = join(tmp('mm-csrc-state-'), 'consensus-state.json')
  const started: { close: () => Promise<void> }[] = []
  t.teardown(async () => { for (const a of started) await a.close() })
  /** a directory signing with `key` whose clock is `skewMs` off; it lists `relays` */
  async function directoryAt (skewMs: number, relays: Descriptor[]): Promise<{ url: string, directory: Directory }> {
    const now = () => Date.now() + skewMs
    const directory = new Directory({ key, now, privateNetwork: true })
    for (const d of relays) directory.accept(d)
    const app = Fastify({ logger: false, https: { key: dirId.tlsKeyPem, cert: dirId.tlsCertPem } })
    installErrorHandler(app)
    await app.register(directoryRoutes, { directory, probe: null, now })
    await app.listen({ host: '127.0.0.1', port: 0 })
    started.push(app)
    return { url: `https://127.0.0.1:${(app.server.address() as { port: number }).port}`, directory }
  }
  const hops = Array.from({ length: 6 }, () => loadOrCreateIdentity(tmp('mm-csrc-r-'), '127.0.0.1'))
  const descs = hops.map((h, i) => hopDescriptor(h, { role: 'relay', nickname: `r${i}`, host: '127.0.0.1', port: 9100 + i, lifetimeMs: 3600_000 }))
  const source = (url: string) => new ConsensusSource({ directory: url, directoryKey: new Directory({ key }).fingerprint, log: silentLogger, stateFile })

  const fresh = await directoryAt(0, descs)
  const a = source(fresh.url)
  await a.refresh()
  t.equal(a.current?.relays.length, 6, 'the current consensus is taken')
  const newest = a.current!.validAfter
  t.same(JSON.parse(readFileSync(stateFile, 'utf8')), { newestValidAfter: newest }, 'and its validAfter kept in the data dir')
  a.stop()

  /* a restart, and a hostile directory source serving a document signed two minutes earlier (still valid) */
  const old = await directoryAt(-120_000, descs)
  const b = source(old.url)
  await t.rejects(b.refresh(), { code: 'MM_ERR_CONSENSUS_OLDER' }, 'after the restart, an older (validly signed) consensus is refused')
  t.equal(b.current, null, 'nothing is held from it')
  await b.refresh().catch(() => {})
  b.stop()

  /* a newer document that drops 4 of the 6 relays: kept back while the held one is valid */
  const c = source(fresh.url)
  await c.refresh()
  const held = c.current!
  const shrunk = await directoryAt(30_000, descs.slice(0, 2).map((_, i) => hopDescriptor(hops[i], { role: 'relay', nickname: `r${i}`, host: '127.0.0.1', port: 9100 + i, lifetimeMs: 3600_000 })))
  const d = new ConsensusSource({ directory: shrunk.url, directoryKey: new Directory({ key }).fingerprint, log: silentLogger, stateFile })
  ;(d as unknown as { current: unknown }).current = held // the same relay, now asking a directory that lists 2 of its 6
  await t.rejects(d.refresh(), { code: 'MM_ERR_CONSENSUS_SHRANK' }, 'a consensus dropping 4 of 6 relays is not adopted')
  t.equal(d.current, held, 'the previous one stays while it is valid')
  c.stop()
  d.stop()
})

t.test('several authorities: the descriptor goes to each, the consensus needs both signatures, one down is routed around', async (t) => {
  const hop = loadOrCreateIdentity(tmp('mm-csrc-multi-'), '127.0.0.1')
  const tlsId = loadOrCreateIdentity(tmp('mm-csrc-multi-dir-'), '127.0.0.1')
  const keys = [ed25519KeyPair(), ed25519KeyPair()]
  const fps = keys.map((k) => new Directory({ key: k }).fingerprint)
  const ports = [await freePort(), await freePort()]
  const urls = ports.map((p) => `https://127.0.0.1:${p}`)
  const posts = [0, 0]
  const apps = await Promise.all(keys.map(async (key, j) => {
    const directory = new Directory({ key, privateNetwork: true, peers: [{ url: urls[1 - j]!, fingerprint: fps[1 - j]! }] })
    const app = Fastify({ logger: false, https: { key: tlsId.tlsKeyPem, cert: tlsId.tlsCertPem } })
    installErrorHandler(app)
    app.addHook('onRequest', async (req) => { if (req.method === 'POST') posts[j]!++ })
    await app.register(directoryRoutes, { directory, probe: null, peerFetchMs: 250 })
    await app.listen({ host: '127.0.0.1', port: ports[j]! })
    return app
  }))
  t.teardown(async () => { for (const a of apps) await a.close().catch(() => {}) })
  const src = new ConsensusSource({
    directory: urls.join(','),
    directoryKey: fps.join(','), // two pinned: a majority is both
    log: silentLogger,
    descriptor: () => hopDescriptor(hop, { role: 'relay', nickname: 'multi', host: '127.0.0.1', port: 9, lifetimeMs: 3600_000 }),
  })
  t.teardown(() => src.stop())
  let listed = false
  for (let i = 0; i < 40 && !listed; i++) {
    await src.refresh().catch(() => {})
    listed = src.current?.relays.some((r) => r.fingerprint === hop.fingerprintHex) ?? false
    if (!listed) await new Promise((resolve) => setTimeout(resolve, 250))
  }
  t.ok(listed, 'listed once both authorities signed the body computed from both votes')
  t.ok(posts[0]! >= 1 && posts[1]! >= 1, `the descriptor was posted to each authority (${posts.join(' and ')} posts)`)
  t.equal(src.current!.signatures.length, 2, 'the consensus held carries both signatures')
  await apps[0]!.close()
  await src.refresh()
  t.equal(src.current?.signatures.length, 2, 'the first authority down: the consensus comes from the second')
})
