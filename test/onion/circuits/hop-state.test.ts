// HopState (docs/PROTOCOL.md §4): the 117-byte session record round-trips exactly and
// the restored hop keeps both positions (forward: the next cell it opens; backward: the
// next layer it seals); malformed records are refused with MM_ERR_LENGTH; a refused
// wrapBackward takes no backward position (P6, P9).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { CELL_DATA, LAYER_HEADER, LAYER_OVERHEAD, LAYER_PREFIX, LAYER_TAG } from '../../../src/onion/cells/constants.js'
import { LayerOpener, LayerSealer, RelayCommand } from '../../../src/onion/cells/layer.js'
import { HOP_RECORD_SIZE, HopState } from '../../../src/onion/circuits/hop-state.js'
import { codeOf, flipBit, tally } from '../helpers.js'
import { repad } from './chain.js'

const pair = () => {
  const f = randomBytes(32)
  const b = randomBytes(32)
  return {
    hop: new HopState({ forward: Buffer.from(f), backward: Buffer.from(b) }),
    client: { forward: new LayerSealer(Buffer.from(f)), backward: new LayerOpener(Buffer.from(b)) },
  }
}

t.test('record size and layout', async t => {
  t.equal(HOP_RECORD_SIZE, 117)
  const { hop, client } = pair()
  hop.peel(repad(client.forward.seal(RelayCommand.DROP, Buffer.alloc(0))))
  hop.peel(repad(client.forward.seal(RelayCommand.DROP, Buffer.alloc(0))))
  hop.originate(RelayCommand.DATA, Buffer.from('x'))
  hop.nextCircId = 0xdeadbeef
  hop.nextFingerprint = Buffer.alloc(32, 0xab)
  const rec = hop.serialize()
  t.equal(rec.length, HOP_RECORD_SIZE)
  t.equal(rec[0], 2, 'version 2')
  t.equal(rec.readBigUInt64BE(65), 2n, 'forward position after the keys')
  t.equal(rec.readBigUInt64BE(73), 1n, 'then the backward position')
  t.equal(rec.readUInt32BE(81), 0xdeadbeef, 'then the next circuit id')
  t.same(rec.subarray(HOP_RECORD_SIZE - 32), Buffer.alloc(32, 0xab))
})

t.test('serialize / deserialize: identical bytes, same positions', async t => {
  const { hop, client } = pair()
  const cells = [1, 2, 3, 4, 5].map((i) => repad(client.forward.seal(RelayCommand.DATA, Buffer.from([i]), 20)))
  hop.peel(cells[0]); hop.peel(cells[1])
  const x = hop.originate(RelayCommand.DATA, Buffer.from('x'))
  hop.nextCircId = 77
  hop.nextFingerprint = Buffer.alloc(32, 3)
  const rec = hop.serialize()
  const back = HopState.deserialize(rec)
  t.same(back.serialize(), rec, 'identical bytes')
  t.equal(back.nextCircId, 77)
  t.same(back.nextFingerprint, Buffer.alloc(32, 3))
  t.equal(codeOf(() => back.peel(cells[1])), 'MM_ERR_LAYER_AUTH', 'position restored: cell 2 again is refused')
  t.equal(codeOf(() => back.peel(cells[3])), 'MM_ERR_LAYER_AUTH', 'and cell 4 before 3')
  t.equal(back.peel(cells[2]).body[0], 3, 'cell 3, the next one, opens')
  t.equal(back.backward.position, 1, 'backward position restored')
  t.equal(client.backward.open(repad(x)).position, 1, 'the client opens the first backward layer')
  t.equal(client.backward.open(repad(back.originate(RelayCommand.DATA, Buffer.from('y')))).position, 2, 'the restored copy seals the next position')
  t.equal(codeOf(() => client.backward.open(repad(hop.originate(RelayCommand.DATA, Buffer.from('z'))))), 'MM_ERR_LAYER_AUTH', 'a second copy sealing position 2 again is refused by the client, now at 3')
  const fresh = HopState.deserialize(pair().hop.serialize())
  t.equal(fresh.nextFingerprint, null, 'no next hop: fingerprint null')
})

t.test('deserialize refuses truncated, oversized and wrong-version records', async t => {
  const rec = pair().hop.serialize()
  const out: string[] = []
  for (let n = 0; n < rec.length; n++) out.push(codeOf(() => HopState.deserialize(rec.subarray(0, n))))
  out.push(codeOf(() => HopState.deserialize(Buffer.concat([rec, Buffer.alloc(1)]))))
  for (let bit = 0; bit < 8; bit++) out.push(codeOf(() => HopState.deserialize(flipBit(rec, bit))))
  t.same(tally(out), { MM_ERR_LENGTH: rec.length + 1 + 8 })
  // the record has no MAC of its own (the SessionStore seals it, src/storage/sessions/seal.ts):
  // a flip elsewhere yields a different but well-formed state, never an untyped error; only a
  // position at 2^53 or beyond (a bit of the top 11 of either u64) is refused
  const other: string[] = []
  for (let bit = 8; bit < rec.length * 8; bit++) other.push(codeOf(() => HopState.deserialize(flipBit(rec, bit))))
  t.same(tally(other), { NO_THROW: rec.length * 8 - 8 - 22, MM_ERR_LENGTH: 22 })
})

t.test('wrapBackward: refuses a layer longer than its data or one too many, without taking a position', async t => {
  const { hop } = pair()
  const inner = Buffer.alloc(CELL_DATA)
  inner.writeUInt16BE(CELL_DATA, 0) // claims more than the cell holds
  t.equal(codeOf(() => hop.wrapBackward(inner)), 'MM_ERR_LENGTH')
  const room = CELL_DATA - LAYER_PREFIX - LAYER_TAG - LAYER_OVERHEAD // sealed length that leaves exactly one more layer
  inner.writeUInt16BE(room + 1, 0) // fits, but one more layer would not
  t.equal(codeOf(() => hop.wrapBackward(inner)), 'MM_ERR_LENGTH')
  t.equal(codeOf(() => hop.wrapBackward(Buffer.alloc(LAYER_PREFIX + LAYER_TAG - 1))), 'MM_ERR_LENGTH', 'shorter than a layer')
  t.equal(hop.backward.position, 0, 'no position taken')
  inner.writeUInt16BE(room, 0)
  const out = hop.wrapBackward(inner)
  t.equal(out.length, CELL_DATA)
  t.equal(out.readUInt16BE(0), LAYER_HEADER + CELL_DATA - LAYER_OVERHEAD)
  t.equal(hop.backward.position, 1)
})

t.test('wipe zeroes both keys', async t => {
  const f = randomBytes(32)
  const b = randomBytes(32)
  const hop = new HopState({ forward: f, backward: b })
  hop.wipe()
  t.ok(f.every((x) => x === 0) && b.every((x) => x === 0))
})

t.test('serialize into a reused buffer overwrites all of it', async t => {
  const { hop, client } = pair()
  hop.peel(repad(client.forward.seal(RelayCommand.DROP, Buffer.alloc(0))))
  const reused = Buffer.alloc(HOP_RECORD_SIZE, 0xff) // a previous circuit's bytes, say
  t.equal(hop.serialize(reused), reused, 'returns the buffer it was given')
  t.same(reused, hop.serialize(), 'identical to a fresh record: no stale byte survives (no next hop: zero fingerprint)')
  hop.nextCircId = 7
  hop.nextFingerprint = Buffer.alloc(32, 0xcd)
  t.same(hop.serialize(reused), hop.serialize())
  t.throws(() => hop.serialize(Buffer.alloc(HOP_RECORD_SIZE - 1)), { code: 'MM_ERR_LENGTH' })
})
