// What comes back from the next hop, in-process: hops that answer an extended CREATE
// wrongly or not at all. P4: an impostor listed at a relay's address without its
// identity key cannot complete a handshake, at the entry (DESTROY HANDSHAKE) or in the
// middle (it refuses the AUTH meant for the listed relay and closes; or it ignores AUTH
// and answers with its own key, which the client detects). No CREATED within 10 s (fake
// clock) is ERROR UNREACHABLE; CREATED for no pending CREATE and commands not valid
// towards the initiator close the channel. TLS impostors: impostor.test.ts (processes).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { HopError } from '../../../src/onion/cells/relay-msg.js'
import { HOP_ERRORS } from '../../../src/onion/circuits/hop-error.js'
import { relayRespond } from '../../../src/onion/handshake/oaep-x25519.js'
import { hopDescriptor } from '../../../src/roles/common/identity.js'
import type { MemoryChannel } from '../../helpers/memory-channel.js'
import { settle, until } from '../../helpers/fake-clock.js'
import { BuildError, RawCircuit } from './raw-circuit.js'
import { identityFor, inProcessNet } from './harness.js'

/** a hop at host:443 that answers cells with `serve`, records what arrives and how its channels close */
function fakeHop (net: ReturnType<typeof inProcessNet>, host: string, serve: (ch: MemoryChannel, cell: ChannelCell) => void) {
  const seen: string[] = []
  const closes: [number, string][] = []
  net.listeners.set(`${host}:443`, {
    accept: (ch) => {
      ch.on('cell', (cell) => serve(ch, cell))
      ch.on('close', (code, reason) => closes.push([code, reason]))
    },
    // it records every frame and ignores AUTH (never checks it, never refuses it)
    intercept: (f) => { seen.push(ChannelCommand[f.data[4]]); return f.data[4] !== ChannelCommand.AUTH },
  })
  return { seen, closes }
}

const buildError = (p: Promise<unknown>): Promise<BuildError> => p.then(() => { throw new Error('built') }, (e) => e as BuildError)

t.test('impostors at listed addresses cannot complete a handshake (P4)', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12'])
  const [r1, r2] = net.relays
  // another identity key, listening where the (tricked) consensus lists R2
  const r2AtDeep = { ...r2.d, host: '127.0.0.14' }
  const deep = net.addRelay('127.0.0.14', { name: 'deep', listedAs: r2AtDeep })
  t.not(deep.identity.fingerprintHex, r2.d.fingerprint, 'the impostor has another identity key')
  net.publish([r1.d, r2AtDeep])

  await t.test('entry: another identity key', async (t) => {
    const err = await buildError(RawCircuit.build(net, [r2AtDeep, net.final.d]))
    t.equal(err.hop, 1)
    t.same([err.cell?.cmd, err.cell?.data[0]], [ChannelCommand.DESTROY, HopError.HANDSHAKE], 'DESTROY(HANDSHAKE)')
    t.equal(HOP_ERRORS[HopError.HANDSHAKE].onCreate, 'MM_ERR_HOP_AUTH', 'which a client reports as MM_ERR_HOP_AUTH')
    t.equal(deep.core.counters.circuitsCreated, 0, 'the impostor could not complete the handshake')
    t.equal(deep.core.counters.cellsRejected, 1, 'the impostor could not decrypt the CREATE')
  })

  await t.test('middle: an impostor relay refuses the AUTH meant for R2', async (t) => {
    const err = await buildError(RawCircuit.build(net, [r1.d, r2AtDeep, net.final.d]))
    t.equal(err.hop, 2, 'the failing hop is the middle one')
    t.same(err.error, { hop: 1, code: HopError.UNREACHABLE, reason: 'next hop closed the channel before answering CREATE (UNREACHABLE)' }, 'reported by hop 1')
    t.equal(deep.core.counters.circuitsCreated, 0)
    t.equal(deep.core.counters.authRefused, 1, 'it refused R1\'s AUTH: R1 meant it for R2')
  })

  await t.test('entry: an impostor that forges CREATED', async (t) => {
    let creates = 0
    fakeHop(net, '127.0.0.16', (ch, cell) => { if (cell.cmd === ChannelCommand.CREATE) { creates++; ch.send(encodeChannelCell(cell.circId, ChannelCommand.CREATED, randomBytes(64))) } })
    const err = await buildError(RawCircuit.build(net, [{ ...r1.d, host: '127.0.0.16' }, net.final.d]))
    t.equal(creates, 1, 'the liar answered the CREATE')
    t.same([err.hop, err.reason], [1, 'handshake: MM_ERR_HANDSHAKE'], 'the client finds the CREATED is not the listed key\'s')
  })

  await t.test('middle: an impostor that ignores AUTH still cannot complete the handshake', async (t) => {
    const fake = identityFor('fake', '127.0.0.15')
    const hop = fakeHop(net, '127.0.0.15', (ch, cell) => {
      if (cell.cmd !== ChannelCommand.CREATE) return
      try {
        ch.send(encodeChannelCell(cell.circId, ChannelCommand.CREATED, relayRespond({ identityPrivate: fake.privateDer, fingerprint: Buffer.from(r2.d.fingerprint, 'hex'), create: cell.data }).created))
      } catch {
        ch.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([HopError.HANDSHAKE])))
      }
    })
    const r2AtFake = { ...r2.d, host: '127.0.0.15' }
    net.publish([r1.d, r2AtFake])
    const err = await buildError(RawCircuit.build(net, [r1.d, r2AtFake, net.final.d]))
    t.same(hop.seen, ['AUTH', 'CREATE'], 'R1 sent AUTH, then the CREATE reached the impostor')
    t.equal(err.hop, 2, 'the failing hop is the middle one')
    t.same(err.error, { hop: 1, code: HopError.HANDSHAKE, reason: 'next hop refused CREATE (HANDSHAKE)' }, 'it could not open the CREATE: R1 reports HANDSHAKE')
    t.equal(HOP_ERRORS[HopError.HANDSHAKE].onExtend, 'MM_ERR_HOP_AUTH', 'which a client reports as MM_ERR_HOP_AUTH')
  })

  await t.test('the honest relays still serve circuits afterwards', async (t) => {
    const c = await RawCircuit.build(net, [r1.d, net.final.d])
    t.equal(await c.echo('still here'), 'still here')
  })
})

t.test('a next hop that does not answer, or answers out of turn', async (t) => {
  const net = inProcessNet(t, ['127.0.0.11'])
  const [r1] = net.relays
  const silentId = identityFor('silent', '127.0.0.17')
  const silent = hopDescriptor(silentId, { role: 'relay', nickname: 'silent', host: '127.0.0.17', port: 443, lifetimeMs: 3600_000 })
  const quiet = fakeHop(net, '127.0.0.17', () => {})
  net.publish([r1.d, silent])

  await t.test('no CREATED within the extend timeout (10 s)', async (t) => {
    const building = buildError(RawCircuit.build(net, [r1.d, silent]))
    t.ok(await until(() => quiet.seen.includes('CREATE')), 'the CREATE reached the next hop')
    await net.clock.advance(9_999)
    let settled = false
    void building.then(() => { settled = true })
    await settle()
    t.notOk(settled, 'no answer before 10 s')
    await net.clock.advance(1)
    const err = await building
    t.same(err.error, { hop: 1, code: HopError.UNREACHABLE, reason: 'next hop did not answer CREATE' }, 'ERROR UNREACHABLE from hop 1 at 10 s')
  })

  await t.test('the next hop answers DESTROY: relayed as the table says', async (t) => {
    for (const [reason, code] of [[HopError.BUSY, HopError.BUSY], [HopError.HANDSHAKE, HopError.HANDSHAKE], [HopError.IN_USE, HopError.UNREACHABLE]]) {
      const host = `127.0.0.${30 + reason}`
      const d = hopDescriptor(identityFor(`refuser-${reason}`, host), { role: 'relay', nickname: 'refuser', host, port: 443, lifetimeMs: 3600_000 })
      fakeHop(net, host, (ch, cell) => { if (cell.cmd === ChannelCommand.CREATE) ch.send(encodeChannelCell(cell.circId, ChannelCommand.DESTROY, Buffer.from([reason]))) })
      net.publish([r1.d, d])
      const c = await RawCircuit.build(net, [r1.d])
      const records = await r1.sessions.size()
      const err = await buildError(c.extend(d))
      t.same([err.error?.hop, err.error?.code, err.error?.reason], [1, code, `next hop refused CREATE (${HopError[code]})`], `DESTROY(${HopError[reason]}) is reported as ${HopError[code]}`)
      const end = await c.nextCell()
      t.same([end.cmd, end.data[0]], [ChannelCommand.DESTROY, code], 'then hop 1 ends the circuit with the same code (one EXTEND per circuit, PROTOCOL §5.5)')
      await settle()
      t.equal(await r1.sessions.size(), records - 1, 'its hop record and back pointer are gone')
      const again = await RawCircuit.build(net, [r1.d, net.final.d])
      t.equal(await again.echo('a new circuit'), 'a new circuit', 'a new circuit through hop 1 extends as before')
    }
  })

  await t.test('CREATED for no pending CREATE, and CREATE towards the initiator, close the channel', async (t) => {
    for (const [host, answer, reason] of [
      ['127.0.0.41', (ch: MemoryChannel, id: number) => ch.send(encodeChannelCell(id + 1, ChannelCommand.CREATED, randomBytes(64))), 'CREATED for no pending CREATE'],
      ['127.0.0.42', (ch: MemoryChannel, id: number) => ch.send(encodeChannelCell(id, ChannelCommand.CREATE, randomBytes(64))), 'channel command 1 is not valid towards the initiator'],
    ] as const) {
      const d = hopDescriptor(identityFor(`rude-${host}`, host), { role: 'relay', nickname: 'rude', host, port: 443, lifetimeMs: 3600_000 })
      const rude = fakeHop(net, host, (ch, cell) => { if (cell.cmd === ChannelCommand.CREATE) answer(ch, cell.circId) })
      net.publish([r1.d, d])
      const err = await buildError(RawCircuit.build(net, [r1.d, d]))
      t.same(rude.closes, [[1008, reason]], `R1 closed the channel: ${reason}`)
      t.same(err.error, { hop: 1, code: HopError.UNREACHABLE, reason: 'next hop closed the channel before answering CREATE (UNREACHABLE)' }, 'and told the client')
    }
  })
})
