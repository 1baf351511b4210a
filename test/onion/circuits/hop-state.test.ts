// HopState (docs/PROTOCOL.md §4): the 245-byte session record round-trips exactly and
// the restored hop keeps its replay window and backward counter; malformed records are
// refused with MM_ERR_LENGTH; a refused wrapBackward consumes no counter (P6, P9).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { CELL_DATA, LAYER_HEADER } from '../../../src/onion/cells/constants.js'
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
  t.equal(HOP_RECORD_SIZE, 245)
  const { hop } = pair()
  hop.nextCircId = 0xdeadbeef
  hop.nextFingerprint = Buffer.alloc(32, 0xab)
  const rec = hop.serialize()
  t.equal(rec.length, HOP_RECORD_SIZE)
  t.equal(rec[0], 1, 'version 1')
  t.equal(rec.readUInt32BE(1 + 64 + 136 + 8), 0xdeadbeef, 'next circuit id after keys, window, counter')
  t.same(rec.subarray(HOP_RECORD_SIZE - 32), Buffer.alloc(32, 0xab))
})

t.test('serialize / deserialize: identical bytes, same behaviour', async t => {
  const { hop, client } = pair()
  const cells = [1, 2, 3, 4, 5].map((i) => repad(client.forward.seal(RelayCommand.DATA, Buffer.from([i]), 20)))
  hop.peel(cells[0]); hop.peel(cells[2])
  hop.originate(RelayCommand.DATA, Buffer.from('x'))
  hop.nextCircId = 77
  hop.nextFingerprint = Buffer.alloc(32, 3)
  const rec = hop.serialize()
  const back = HopState.deserialize(rec)
  t.same(back.serialize(), rec, 'identical bytes')
  t.equal(back.nextCircId, 77)
  t.same(back.nextFingerprint, Buffer.alloc(32, 3))
  t.equal(codeOf(() => back.peel(cells[0])), 'MM_ERR_REPLAY', 'window restored: 1 still refused')
  t.equal(back.peel(cells[1]).body[0], 2, '2 (out of order) accepted')
  t.equal(back.backward.counter, 1n, 'backward counter restored')
  const b = back.originate(RelayCommand.DATA, Buffer.from('y'))
  t.equal(b.readBigUInt64BE(0), 2n, 'next backward cell uses counter 2')
  const opened = client.backward.open(repad(hop.originate(RelayCommand.DATA, Buffer.from('z'))))
  t.equal(opened.ctr, 2n)
  t.equal(codeOf(() => client.backward.open(b)), 'MM_ERR_REPLAY', 'same counter from the restored copy is a replay for the client')
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
  // a flip elsewhere yields a different but well-formed state, never an untyped error
  const other: string[] = []
  for (let bit = 8; bit < rec.length * 8; bit++) other.push(codeOf(() => HopState.deserialize(flipBit(rec, bit))))
  t.same(tally(other), { NO_THROW: rec.length * 8 - 8 })
})

t.test('wrapBackward: refuses a layer longer than its data or one too many, without consuming a counter', async t => {
  const { hop } = pair()
  const inner = Buffer.alloc(CELL_DATA)
  inner.writeUInt16BE(CELL_DATA, 8) // claims more than the cell holds
  t.equal(codeOf(() => hop.wrapBackward(inner)), 'MM_ERR_LENGTH')
  inner.writeUInt16BE(CELL_DATA - 26 - 28, 8) // fits, but one more layer would not
  t.equal(codeOf(() => hop.wrapBackward(inner)), 'MM_ERR_LENGTH')
  t.equal(codeOf(() => hop.wrapBackward(Buffer.alloc(25))), 'MM_ERR_LENGTH', 'shorter than a layer')
  t.equal(hop.backward.counter, 0n, 'no counter consumed')
  inner.writeUInt16BE(CELL_DATA - 26 - 29, 8) // exactly room for one more layer
  const out = hop.wrapBackward(inner)
  t.equal(out.length, CELL_DATA)
  t.equal(out.readUInt16BE(8), LAYER_HEADER + CELL_DATA - 29)
  t.equal(hop.backward.counter, 1n)
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
