// The directory lists a relay only where it answers with its own identity (P7):
// probeHop accepts a real relay at its published address and refuses a closed
// port, a plain TCP service, and another hop's TLS endpoint under a fresh key, each
// with the same generic answer, no sooner than the probe's fail time (no port scanner).
import t from 'tap'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { probeHop } from '../../../src/roles/server/reachability.js'
import { signDescriptor, type Descriptor } from '../../../src/onion/directory/descriptor.js'
import { loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { directoryKey, startRelayProc, tmp } from '../../helpers/net.js'

const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e) => e.code)

t.test('probeHop', async (t) => {
  const dir = tmp()
  const key = directoryKey()
  const relay = await startRelayProc({ host: '127.0.0.31', consensus: join(dir, 'none.json'), dirKey: key.fingerprint })
  t.teardown(() => relay.kill())
  const real = await relay.descriptor()
  t.equal(await codeOf(probeHop(real)), 'ok', 'a relay at its published address is accepted')

  const fresh = loadOrCreateIdentity(tmp(), '127.0.0.1')
  const at = (host: string, port: number): Descriptor => {
    const now = Date.now()
    return signDescriptor({
      v: 1, role: 'relay', nickname: 'liar', host, port, identityKey: fresh.publicDer.toString('base64'), fingerprint: fresh.fingerprintHex,
      tlsCert: fresh.tlsCertPem, tlsFingerprint: fresh.tlsFingerprint, published: now, expires: now + 3600_000,
    }, fresh.privateDer)
  }
  const plain = createServer((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'))
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
  t.teardown(() => plain.close())
  const closed = createServer()
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
  const closedPort = (closed.address() as { port: number }).port
  await new Promise<void>((r) => closed.close(() => r()))

  const FAIL_AFTER = 400
  const cases: [string, Descriptor][] = [
    ['nothing listening', at('127.0.0.1', closedPort)],
    ['a non-TLS service (like SSH)', at('127.0.0.1', (plain.address() as { port: number }).port)],
    ['another hop\'s address under a fresh key', at(relay.host, relay.port)],
    ['the right endpoint answering with another identity', { ...real, fingerprint: fresh.fingerprintHex }],
  ]
  const messages = new Set<string>()
  for (const [what, d] of cases) {
    const started = Date.now()
    const err = await probeHop(d, 3000, FAIL_AFTER).then(() => null, (e) => e)
    t.equal(err?.code, 'MM_ERR_REACHABILITY', what)
    t.ok(Date.now() - started >= FAIL_AFTER - 5, `${what}: answered no sooner than the fail time (${Date.now() - started} ms)`)
    t.notMatch(err?.message, /ECONN|EPROTO|mismatch|identity answered|no descriptor|timeout|\(/i, `${what}: the reason does not leak`)
    messages.add(err?.message.replace(`${d.host}:${d.port}`, 'ADDR'))
  }
  t.equal(messages.size, 1, 'one generic message for every failure')
})
