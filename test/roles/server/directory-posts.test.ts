// The descriptor-post limits of POST /v1/directory/descriptors (src/roles/server/directory.ts):
// a source address that spent its budget (POSTS_PER_ADDRESS) is refused with 429
// MM_ERR_RATE, a new identity from it too, while a hop accepted before still gets
// its heartbeats through on its own budget (POSTS_PER_HOP) — many relays on one
// address (a devnet) never starve each other — and that budget is bounded as well.
import t from 'tap'
import Fastify from 'fastify'
import { ed25519KeyPair } from '../../../src/onion/crypto/primitives.js'
import { signDescriptor, type Descriptor } from '../../../src/onion/directory/descriptor.js'
import { loadOrCreateIdentity, type HopIdentity } from '../../../src/roles/common/identity.js'
import { installErrorHandler } from '../../../src/roles/common/http-errors.js'
import { Directory, directoryRoutes, POSTS_PER_ADDRESS, POSTS_PER_HOP } from '../../../src/roles/server/directory.js'
import { tmp } from '../../helpers/net.js'

const [A, B] = [0, 1].map(() => loadOrCreateIdentity(tmp('mm-posts-id-'), '127.0.0.1'))
let published = Date.now()

function desc (id: HopIdentity, port: number): Descriptor {
  published += 1 // each post freshly signed and newer, as a heartbeat is
  return signDescriptor({
    v: 1, role: 'relay', nickname: 'n', host: '127.0.0.1', port,
    identityKey: id.publicDer.toString('base64'), fingerprint: id.fingerprintHex,
    tlsCert: id.tlsCertPem, tlsFingerprint: id.tlsFingerprint, published, expires: published + 3600_000,
  }, id.privateDer)
}

t.test('a spent address budget refuses new identities, not the heartbeats of accepted ones', async (t) => {
  const app = Fastify({ logger: false })
  installErrorHandler(app)
  const directory = new Directory({ key: ed25519KeyPair(), privateNetwork: true })
  const frozen = Date.now() // the budgets' clock stands still: nothing refills during the test
  await app.register(directoryRoutes, { directory, probe: null, now: () => frozen })
  t.teardown(() => app.close())
  const post = (body: unknown) => app.inject({ method: 'POST', url: '/v1/directory/descriptors', payload: body as object })

  t.equal((await post(desc(A, 9001))).statusCode, 202, "A's first post spends one of its address's tokens")
  // every inject comes from 127.0.0.1: spend what is left of that address's burst
  for (let i = 1; i < POSTS_PER_ADDRESS.burst; i++) {
    t.equal((await post({ fingerprint: 'f'.repeat(64), junk: i })).statusCode, 400, 'a bad descriptor still spends a token')
  }
  const refused = await post(desc(B, 9002))
  t.equal(refused.statusCode, 429, 'the address is over its budget: a new identity is refused')
  t.equal(refused.json().error.code, 'MM_ERR_RATE')
  t.equal((await post({ fingerprint: A.fingerprintHex, junk: 1 })).statusCode, 400, 'a post naming an accepted hop is not refused for the rate while that hop has budget')

  const beats: number[] = []
  for (let i = 0; i < POSTS_PER_HOP.burst - 1; i++) beats.push((await post(desc(A, 9001))).statusCode)
  t.same(beats, Array(POSTS_PER_HOP.burst - 1).fill(202), "A's heartbeats still get through on its own budget")
  t.same(directory.consensus().doc.relays.map((r) => r.fingerprint), [A.fingerprintHex], 'A stays listed, B was never listed')

  const over = await post(desc(A, 9001))
  t.equal(over.statusCode, 429, "past its own burst (and its address's), A's posts are refused too: the hop budget is bounded")
  t.equal(over.json().error.code, 'MM_ERR_RATE')
})
