// Channel cells (docs/PROTOCOL.md §2): the stored cell encodes byte for byte and decodes
// back; short data is padded (not with zeros) to CELL_SIZE; every other length, circuit
// id 0 and unknown channel commands are refused with a typed code (P3, P9).
import t from 'tap'
import { ChannelCommand, decodeChannelCell, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { CELL_DATA, CELL_SIZE, LINK_HEADER } from '../../../src/onion/cells/constants.js'
import { codeOf, flipBit, hex, tally, vectors } from '../helpers.js'

const v = vectors('onion-cells.json').link

t.test('vector: data exactly CELL_DATA long', async t => {
  t.equal(hex(v.data).length, CELL_DATA)
  const cell = encodeChannelCell(v.circId, v.cmd, hex(v.data))
  t.equal(cell.toString('hex'), v.hex, 'exact bytes')
  t.equal(cell.length, CELL_SIZE)
  t.equal(cell.readUInt32BE(0), 0x01020304, 'circ id u32 BE at 0')
  t.equal(cell[4], ChannelCommand.RELAY, 'cmd at 4')
  const d = decodeChannelCell(hex(v.hex))
  t.equal(d.circId, v.circId)
  t.equal(d.cmd, v.cmd)
  t.equal(d.data.toString('hex'), v.data)
  t.equal(encodeChannelCell(d.circId, d.cmd, d.data).toString('hex'), v.hex, 'round trip reproduces identical bytes')
})

t.test('constants', async t => {
  t.equal(CELL_SIZE, 2048)
  t.equal(LINK_HEADER, 5)
  t.equal(CELL_DATA, 2043)
})

t.test('short data is padded to a full cell with random bytes', async t => {
  const a = encodeChannelCell(9, ChannelCommand.CREATED, Buffer.from('abc'))
  const b = encodeChannelCell(9, ChannelCommand.CREATED, Buffer.from('abc'))
  t.equal(a.length, CELL_SIZE)
  t.equal(a.subarray(5, 8).toString(), 'abc')
  t.not(a.subarray(8).toString('hex'), b.subarray(8).toString('hex'), 'padding differs between cells')
  t.not(a.subarray(8).toString('hex'), '00'.repeat(CELL_DATA - 3), 'padding is not zeros')
  t.equal(encodeChannelCell(1, ChannelCommand.DESTROY, Buffer.alloc(0)).length, CELL_SIZE)
})

t.test('encode refuses bad circuit ids and oversized data', async t => {
  for (const id of [0, -1, 0x100000000, 1.5, NaN]) t.equal(codeOf(() => encodeChannelCell(id, ChannelCommand.RELAY, Buffer.alloc(0))), 'MM_ERR_CIRC_ID', `circ id ${id}`)
  t.equal(codeOf(() => encodeChannelCell(0xffffffff, ChannelCommand.RELAY, Buffer.alloc(0))), 'NO_THROW', 'circ id 2^32-1 is fine')
  t.equal(codeOf(() => encodeChannelCell(1, ChannelCommand.RELAY, Buffer.alloc(CELL_DATA + 1))), 'MM_ERR_LENGTH')
})

t.test('decode: every length but CELL_SIZE is MM_ERR_LENGTH', async t => {
  const good = hex(v.hex)
  const out: string[] = []
  for (let n = 0; n < CELL_SIZE; n++) out.push(codeOf(() => decodeChannelCell(good.subarray(0, n))))
  for (const n of [CELL_SIZE + 1, CELL_SIZE + 5, 2 * CELL_SIZE]) out.push(codeOf(() => decodeChannelCell(Buffer.concat([good, Buffer.alloc(n - CELL_SIZE)]))))
  t.same(tally(out), { MM_ERR_LENGTH: CELL_SIZE + 3 })
})

t.test('decode: circuit id 0 and unknown commands', async t => {
  const good = hex(v.hex)
  const zero = Buffer.from(good); zero.writeUInt32BE(0, 0)
  t.equal(codeOf(() => decodeChannelCell(zero)), 'MM_ERR_CIRC_ID')
  const bad: string[] = []
  for (let cmd = 0; cmd < 256; cmd++) {
    const c = Buffer.from(good); c[4] = cmd
    const code = codeOf(() => decodeChannelCell(c))
    const valid = cmd >= 1 && cmd <= 5
    if ((code === 'NO_THROW') !== valid || (!valid && code !== 'MM_ERR_CHANNEL_CMD')) bad.push(`${cmd}:${code}`)
  }
  t.same(bad, [], 'commands 1..5 accepted, every other byte MM_ERR_CHANNEL_CMD')
})

t.test('decode: every bit flip of the header is either a valid other header or a typed error', async t => {
  const good = hex(v.hex)
  const out: string[] = []
  for (let bit = 0; bit < LINK_HEADER * 8; bit++) out.push(codeOf(() => decodeChannelCell(flipBit(good, bit))))
  // circ id 0x01020304 never becomes 0 with one flip; cmd 3 flips to 2, 1 (valid) or 7, 11, 19, 35, 67, 131 (unknown)
  t.same(tally(out), { NO_THROW: 32 + 2, MM_ERR_CHANNEL_CMD: 6 })
  t.equal(decodeChannelCell(good.subarray(0)).data.byteOffset, good.byteOffset + LINK_HEADER, 'data is a view, not a copy')
})
