// P4: the client authenticates every hop against the identity key listed in the
// signed consensus. Impostors listen where the consensus says a relay is: one
// with its own TLS certificate (the pinned certificate fails at TLS), one with
// the listed relay's TLS key and certificate but another identity key (TLS
// passes, the handshake cannot), and one that answers CREATE with a forged
// CREATED. Each is tried at the entry (hop 1) and, where the consensus can list
// it, in the middle (hop 2, reached through a real relay's EXTEND). In the middle, a
// relay process with another identity already refuses R1's AUTH (it names R2 as the
// responder, §2.3), so one more impostor ignores AUTH and tries the handshake itself.
// Last, P7 as the client sees it over real sockets: an EXTEND to an unlisted address is
// MM_ERR_NOT_LISTED for that hop, and no TCP connection reaches the decoy listening
// there (every other P7 case: extend-policy.test.ts, in-process).
import t, { type Test } from 'tap'
import { copyFileSync, readFileSync } from 'node:fs'
import { createPrivateKey, randomBytes } from 'node:crypto'
import { createServer } from 'node:https'
import { createServer as createTcpServer, type Server } from 'node:net'
import { join } from 'node:path'
import { WebSocketServer } from 'ws'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { CircuitError } from '../../../src/roles/client/circuits/circuit-error.js'
import { ChannelCommand, decodeChannelCell, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { signDescriptor, type Descriptor } from '../../../src/onion/directory/descriptor.js'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import { relayRespond } from '../../../src/onion/handshake/oaep-x25519.js'
import { loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { startRelayProc, tmp } from '../../helpers/net.js'
import { metrics, sleep, startNet } from './fixture.js'

const CLIENT_IP = '127.0.0.77'

/** `d` moved to host:port, re-signed with the listed relay's own identity key (read from its data dir) */
function relocated (d: Descriptor, dataDir: string, host: string, port: number): Descriptor {
  const { signature: _s, ...body } = d
  const priv = createPrivateKey(readFileSync(join(dataDir, 'identity.key'), 'utf8')).export({ type: 'pkcs8', format: 'der' })
  return signDescriptor({ ...body, host, port }, priv)
}

/** builds through a fresh channel pool (a pool keys channels by fingerprint and would reuse the honest relay's channel) */
async function buildFails (t: Test, path: Descriptor[]): Promise<CircuitError> {
  const channels = new ChannelPool(CLIENT_IP)
  t.teardown(() => channels.close())
  const err = await Circuit.build({ path, channels, timeoutMs: 5000 }).then((c) => { c.destroy(); return null }, (e) => e)
  t.type(err, CircuitError, 'the build fails with a CircuitError')
  return err as CircuitError
}

t.test('impostors at listed addresses cannot complete a handshake', async (t) => {
  const net = await startNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const [r1, r2, r3] = net.relays
  const [d1, d2, d3] = net.descs

  // tls impostor: its own certificate and identity
  const tlsImpostor = await startRelayProc({ host: '127.0.0.14', consensus: net.consensus, dirKey: net.directoryKey })
  t.teardown(() => tlsImpostor.kill())
  // deep impostor: R2's TLS key and certificate, a fresh identity key; listens on R2's host (its cert covers it)
  const deepDir = tmp('mm-impostor-')
  copyFileSync(join(r2.dataDir, 'tls.key'), join(deepDir, 'tls.key'))
  copyFileSync(join(r2.dataDir, 'tls.crt'), join(deepDir, 'tls.crt'))
  const deepImpostor = await startRelayProc({ host: '127.0.0.12', consensus: net.consensus, dirKey: net.directoryKey, dataDir: deepDir })
  t.teardown(() => deepImpostor.kill())
  t.not(deepImpostor.fingerprint, r2.fingerprint, 'the deep impostor has another identity key')
  t.equal((await deepImpostor.descriptor()).tlsFingerprint, d2.tlsFingerprint, 'but presents the listed TLS certificate')

  // a liar with R1's TLS key and certificate that answers every CREATE with random bytes
  const liarHttps = createServer({ key: readFileSync(join(r1.dataDir, 'tls.key')), cert: readFileSync(join(r1.dataDir, 'tls.crt')) })
  const wss = new WebSocketServer({ server: liarHttps, path: '/channel' })
  let liarCreates = 0
  wss.on('connection', (ws) => ws.on('message', (data) => {
    const cell = decodeChannelCell(data as Buffer)
    if (cell.cmd === ChannelCommand.CREATE) { liarCreates++; ws.send(encodeChannelCell(cell.circId, ChannelCommand.CREATED, randomBytes(64))) }
  }))
  await new Promise<void>((resolve) => liarHttps.listen(0, '127.0.0.11', resolve))
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close(); liarHttps.close() })
  const liarPort = (liarHttps.address() as { port: number }).port

  const r2AtDeep = relocated(d2, r2.dataDir, deepImpostor.host, deepImpostor.port)
  const r3AtTls = relocated(d3, r3.dataDir, tlsImpostor.host, tlsImpostor.port)
  const r1AtLiar = relocated(d1, r1.dataDir, '127.0.0.11', liarPort)
  // the directory (wrongly, or tricked) lists R2 and R3 where the impostors listen
  await net.publish([d1, r2AtDeep, r3AtTls])

  const channels = new ChannelPool(CLIENT_IP)
  t.teardown(() => channels.close())

  // positive control: the same network builds and serves a circuit with honest entries
  const ok = await Circuit.build({ path: [d1, net.final.descriptor], channels })
  t.equal((await ok.request({ method: 'GET', path: '/ok', headers: {}, body: Buffer.alloc(0) })).status, 200, 'control circuit works')
  ok.destroy()

  // (first, while the consensus lists R2 at the deep impostor's address, so no publish is needed)
  t.test('P7 through the client: EXTEND to an unlisted address is refused without connecting', async (t) => {
    const decoy = async (host: string): Promise<{ port: number, connections: () => number }> => {
      let n = 0
      const s: Server = createTcpServer((sock) => { n++; sock.destroy() })
      await new Promise<void>((resolve) => s.listen(0, host, resolve))
      t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())))
      return { port: (s.address() as { port: number }).port, connections: () => n }
    }
    const anyLoopback = await decoy('127.0.0.1')
    const otherPort = await decoy(r2AtDeep.host)
    for (const target of [{ ...d2, fingerprint: randomBytes(32).toString('hex'), host: '127.0.0.1', port: anyLoopback.port }, { ...r2AtDeep, port: otherPort.port }]) {
      const before = (await metrics(r1)).extendsRefused
      const err = await buildFails(t, [d1, target])
      t.equal(err.code, 'MM_ERR_NOT_LISTED')
      t.equal(err.hop, 2, 'the refused hop is the one being added')
      t.match(err.message, target.fingerprint.slice(0, 8), 'the error names the hop')
      t.equal((await metrics(r1)).extendsRefused, before + 1, 'the extending relay counted the refusal')
    }
    await sleep(300)
    t.equal(anyLoopback.connections(), 0, 'no connection reached 127.0.0.1')
    t.equal(otherPort.connections(), 0, 'no connection reached the unlisted port')
  })

  t.test('entry: impostor with its own certificate fails the TLS pin', async (t) => {
    const err = await buildFails(t, [r3AtTls, net.final.descriptor])
    t.equal(err.hop, 1)
    t.equal(err.code, 'MM_ERR_CIRCUIT_BUILD')
    t.match(err.message, d3.fingerprint.slice(0, 8), 'the error names the hop')
    t.equal((await metrics(tlsImpostor)).circuitsCreated, 0, 'no handshake reached the impostor')
  })

  t.test('entry: impostor with the listed TLS certificate but another identity key', async (t) => {
    const err = await buildFails(t, [r2AtDeep, net.final.descriptor])
    t.equal(err.hop, 1)
    t.equal(err.code, 'MM_ERR_HOP_AUTH')
    t.match(err.message, d2.fingerprint.slice(0, 8), 'the error names the hop')
    const m = await metrics(deepImpostor)
    t.equal(m.circuitsCreated, 0, 'the impostor could not complete the handshake')
    t.ok(m.cellsRejected >= 1, 'the impostor could not decrypt the CREATE')
  })

  t.test('entry: impostor that forges CREATED', async (t) => {
    const err = await buildFails(t, [r1AtLiar, net.final.descriptor])
    t.equal(liarCreates, 1, 'the liar answered the CREATE')
    t.equal(err.hop, 1)
    t.equal(err.code, 'MM_ERR_HOP_AUTH')
    t.match(err.message, d1.fingerprint.slice(0, 8))
  })

  t.test('middle: impostor relay with the listed TLS certificate but another identity key', async (t) => {
    const before = await metrics(deepImpostor)
    const err = await buildFails(t, [d1, r2AtDeep, net.final.descriptor])
    t.equal(err.hop, 2, 'the failing hop is the middle one')
    t.equal(err.code, 'MM_ERR_CIRCUIT_BUILD')
    t.match(err.message, d2.fingerprint.slice(0, 8), 'the error names the hop')
    t.match(err.message, /closed the channel before answering CREATE/)
    const after = await metrics(deepImpostor)
    t.equal(after.circuitsCreated, 0)
    t.equal(after.authRefused - before.authRefused, 1, 'it refused R1\'s AUTH: R1 meant it for R2')
  })

  t.test('middle: impostor with its own certificate fails R1\'s TLS pin', async (t) => {
    const err = await buildFails(t, [d1, r3AtTls, net.final.descriptor])
    t.equal(err.hop, 2)
    t.equal(err.code, 'MM_ERR_CIRCUIT_BUILD')
    t.match(err.message, d3.fingerprint.slice(0, 8))
    t.equal((await metrics(tlsImpostor)).circuitsCreated, 0, 'no handshake reached the impostor')
  })

  t.test('middle: an impostor that ignores AUTH still cannot complete the handshake', async (t) => {
    // R2's TLS key and certificate, a fresh identity key, claiming R2's fingerprint
    const fake = loadOrCreateIdentity(tmp('mm-impostor-'), '127.0.0.15')
    const https = createServer({ key: readFileSync(join(r2.dataDir, 'tls.key')), cert: readFileSync(join(r2.dataDir, 'tls.crt')) })
    const wss = new WebSocketServer({ server: https, path: '/channel' })
    const seen: string[] = []
    wss.on('connection', (ws) => ws.on('message', (data) => {
      const cell = decodeChannelCell(data as Buffer)
      seen.push(ChannelCommand[cell.cmd])
      if (cell.cmd !== ChannelCommand.CREATE) return
      try {
        const r = relayRespond({ identityPrivate: fake.privateDer, fingerprint: Buffer.from(d2.fingerprint, 'hex'), create: cell.data })
        ws.send(encodeChannelCell(cell.circId, ChannelCommand.CREATED, r.created))
      } catch {
        ws.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.HANDSHAKE])))
      }
    }))
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.15', resolve))
    t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close(); https.close() })
    const r2AtFake = relocated(d2, r2.dataDir, '127.0.0.15', (https.address() as { port: number }).port)
    await net.publish([d1, r2AtFake, r3AtTls])
    const err = await buildFails(t, [d1, r2AtFake, net.final.descriptor])
    t.same(seen, ['AUTH', 'CREATE'], 'R1 sent AUTH, then the CREATE reached the impostor')
    t.equal(err.hop, 2, 'the failing hop is the middle one')
    t.equal(err.code, 'MM_ERR_HOP_AUTH')
    t.match(err.message, d2.fingerprint.slice(0, 8), 'the error names the hop')
  })

  t.test('the honest relays still serve circuits afterwards', async (t) => {
    const c = await Circuit.build({ path: [d1, net.final.descriptor], channels })
    const r = await c.request({ method: 'POST', path: '/after', headers: {}, body: Buffer.from('still here') })
    t.equal(r.body.toString(), 'still here')
    c.destroy()
  })
})
