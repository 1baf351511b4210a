// Link TLS at a real relay's port and a real server's (docs/PROTOCOL.md §2.1), checked from a test as
// testssl.sh would: TLS 1.2 is refused and TLS 1.3 accepted; a session handed out is
// never resumed (no stateless ticket, no server-side session cache); the link
// certificate is valid for at most LINK_CERT_DAYS; and a rotation keeps a peer that
// pinned the relay's descriptor (current + next certificate) connecting, while a peer
// pinned to the old certificate alone is refused.
import t from 'tap'
import { connect, type TLSSocket } from 'node:tls'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { LINK_CERT_DAYS, certificateFingerprint, certificateValidity } from '../../../src/onion/crypto/certificate.js'
import { silentLogger } from '../../../src/log.js'
import { connectChannel } from '../../../src/roles/common/channel.js'
import { loadOrCreateIdentity, rotateLinkCertificates } from '../../../src/roles/common/identity.js'
import { startRelay } from '../../../src/roles/relay/index.js'
import { lruSessionStore } from '../../../src/storage/sessions/lru.js'
import { tmp } from '../../helpers/net.js'
import { startServerProc, stopProc } from '../../helpers/network.js'

const HOST = '127.0.0.1'
const DAY = 86_400_000

/** one TLS connection; resolves with what it negotiated, the sessions it was handed, and whether it resumed */
function tlsTo (port: number, o: { maxVersion?: 'TLSv1.2' | 'TLSv1.3', session?: Buffer } = {}): Promise<{ err?: string, protocol?: string | null, reused?: boolean, sessions: Buffer[], fingerprint?: string }> {
  return new Promise((resolve) => {
    const sessions: Buffer[] = []
    const c: TLSSocket = connect({ host: HOST, port, rejectUnauthorized: false, maxVersion: o.maxVersion, session: o.session, servername: undefined })
    c.on('session', (s: Buffer) => sessions.push(s))
    c.once('secureConnect', () => {
      const fingerprint = certificateFingerprint(c.getPeerCertificate(true).raw)
      // the tickets of TLS 1.3 come after the handshake: give them a moment on the wire
      c.write('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
      c.on('data', () => {})
      c.once('end', () => resolve({ protocol: c.getProtocol(), reused: c.isSessionReused(), sessions, fingerprint }))
    })
    c.once('error', (e: NodeJS.ErrnoException) => resolve({ err: e.code ?? e.message, sessions }))
  })
}

t.test('a relay port: TLS 1.3 only, nothing resumable, short-lived certificates rotated without breaking pins', async (t) => {
  const dataDir = tmp('mm-link-tls-')
  // a relay whose current certificate is 8 days old: made in the past, before the relay starts
  const identity = loadOrCreateIdentity(dataDir, HOST)
  for (const f of ['tls.key', 'tls.crt']) rmSync(join(dataDir, f))
  rotateLinkCertificates(dataDir, HOST, identity, Date.now() - 8 * DAY)
  const oldCert = identity.tlsCertPem
  t.equal(identity.tlsNextCertPem, undefined, 'at issue, no next certificate yet')

  const consensusFile = join(tmp(), 'none.json')
  const relay = await startRelay({ host: HOST, port: 0, dataDir, nickname: 'tls', consensusFile, directoryKey: 'a'.repeat(64), createRate: 10, createBurst: 10, maxChannels: 10 },
    { log: silentLogger, sessions: async () => lruSessionStore({ maxEntries: 100, ttlMs: 60_000 }) })
  t.teardown(() => relay.close())

  // protocol versions
  const v12 = await tlsTo(relay.port, { maxVersion: 'TLSv1.2' })
  t.ok(v12.err, `TLS 1.2 is refused (${v12.err})`)
  const v13 = await tlsTo(relay.port)
  t.equal(v13.protocol, 'TLSv1.3', 'TLS 1.3 is accepted')

  // resumption: whatever OpenSSL hands out resumes nothing
  for (const s of v13.sessions) {
    const again = await tlsTo(relay.port, { session: s })
    t.equal(again.protocol, 'TLSv1.3')
    t.equal(again.reused, false, 'a session from an earlier connection is not resumed: nothing outlives the connection')
  }
  t.comment(`the relay handed out ${v13.sessions.length} stateful session id(s) (OpenSSL's TLS 1.3 behaviour under SSL_OP_NO_TICKET); none resumes`)

  // certificate lifetimes
  const served = certificateValidity(relay.identity.tlsCertPem)!
  t.ok(served.notAfter - served.notBefore <= LINK_CERT_DAYS * DAY + 60_000, `the served certificate is valid ${((served.notAfter - served.notBefore) / DAY).toFixed(2)} days (≤ ${LINK_CERT_DAYS})`)
  t.equal(v13.fingerprint, certificateFingerprint(oldCert), 'it is the 8-day-old certificate')

  // with 6 days left the relay published the next certificate ahead: the descriptor lists both
  const d = relay.descriptor()
  t.equal(d.tlsFingerprint, certificateFingerprint(oldCert))
  t.ok(d.tlsNextCert && d.tlsNextFingerprint && d.tlsNextFingerprint !== d.tlsFingerprint, 'the descriptor carries the next certificate')
  const next = certificateValidity(d.tlsNextCert!)!
  t.ok(next.notAfter - next.notBefore <= LINK_CERT_DAYS * DAY + 60_000, 'the next one is short-lived too')
  const pinnedBoth = { host: HOST, port: relay.port, tlsCert: d.tlsCert, tlsFingerprint: d.tlsFingerprint, tlsNextCert: d.tlsNextCert, tlsNextFingerprint: d.tlsNextFingerprint }
  const pinnedOld = { host: HOST, port: relay.port, tlsCert: d.tlsCert, tlsFingerprint: d.tlsFingerprint }
  const ch1 = await connectChannel(pinnedBoth)
  ch1.close()
  t.pass('a peer pinned to the descriptor connects before the rotation')

  // 4.5 days later the current one has under 2 days left: the relay switches to the next
  t.equal(relay.rotateLinkCertificates(Date.now() + 4.5 * DAY), true, 'the relay switched certificates')
  const after = await tlsTo(relay.port)
  t.equal(after.fingerprint, d.tlsNextFingerprint, 'new connections get the certificate published ahead')
  const ch2 = await connectChannel(pinnedBoth)
  ch2.close()
  t.pass('the peer that pinned the descriptor before the rotation still connects')
  await t.rejects(connectChannel(pinnedOld), { code: 'MM_ERR_UNREACHABLE' }, 'a peer pinned to the old certificate alone is refused: pinning holds')
  t.equal(relay.descriptor().tlsFingerprint, d.tlsNextFingerprint, 'the descriptor now lists it as current')
})

t.test('the server port (a real server process): TLS 1.3 only, nothing resumable, a short-lived certificate', async (t) => {
  const dataDir = tmp('mm-link-tls-srv-')
  const server = await startServerProc({ dataDir })
  t.teardown(() => stopProc(server.proc))
  const v12 = await tlsTo(server.port, { maxVersion: 'TLSv1.2' })
  t.ok(v12.err, `TLS 1.2 is refused (${v12.err})`)
  const v13 = await tlsTo(server.port)
  t.equal(v13.protocol, 'TLSv1.3', 'TLS 1.3 is accepted')
  const resumed: boolean[] = []
  for (const s of v13.sessions) resumed.push((await tlsTo(server.port, { session: s })).reused === true)
  t.notOk(resumed.includes(true), `none of the ${v13.sessions.length} session id(s) handed out resumes a connection`)
  const served = certificateValidity(readFileSync(join(dataDir, 'tls.crt'), 'utf8'))!
  t.ok(served.notAfter - served.notBefore <= LINK_CERT_DAYS * DAY + 60_000, `the server's link certificate is valid ${((served.notAfter - served.notBefore) / DAY).toFixed(2)} days (≤ ${LINK_CERT_DAYS})`)
  t.equal(v13.fingerprint, certificateFingerprint(readFileSync(join(dataDir, 'tls.crt'), 'utf8')), 'and it is the one served')
})
