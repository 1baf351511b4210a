// Relay message bodies (docs/PROTOCOL.md §5): EXTEND, ERROR and DATA encode to the
// stored hex and decode back to identical bytes; every truncation and bad field is
// refused with a typed code (P9).
import t from 'tap'
import {
  DATA_HEADER, DataFlag, HopError, decodeData, resetData, decodeError, decodeExtend, encodeData, encodeError, encodeExtend,
} from '../../../src/onion/cells/relay-msg.js'
import { codeOf, flipBit, hex, tally, vectors } from '../helpers.js'

const v = vectors('onion-cells.json')

t.test('EXTEND vector and round trip', async t => {
  const m = { fingerprint: hex(v.extend.fingerprint), host: v.extend.host, port: v.extend.port, create: hex(v.extend.create) }
  const b = encodeExtend(m)
  t.equal(b.toString('hex'), v.extend.hex)
  const d = decodeExtend(b)
  t.same(
    { fingerprint: d.fingerprint.toString('hex'), host: d.host, port: d.port, create: d.create.toString('hex') },
    { fingerprint: v.extend.fingerprint, host: v.extend.host, port: v.extend.port, create: v.extend.create },
  )
  t.equal(encodeExtend(d).toString('hex'), v.extend.hex, 'identical bytes')
  // layout: fp | hostLen | host | port | CREATE
  t.equal(b[32], 9)
  t.equal(b.subarray(33, 42).toString('ascii'), '127.0.0.1')
  t.equal(b.readUInt16BE(42), 9001)
  t.equal(b.subarray(44).toString('hex'), v.extend.create)
})

t.test('EXTEND: IPv4 and IPv6 literals only; names, refused hosts and ports', async t => {
  const base = { fingerprint: Buffer.alloc(32, 1), port: 443, create: Buffer.alloc(3) }
  for (const host of ['::1', '2001:db8::1', '192.0.2.7', '::ffff:192.0.2.7']) t.equal(decodeExtend(encodeExtend({ ...base, host })).host, host)
  for (const host of ['', 'a b', 'x/y', 'ü', 'a'.repeat(254), 'relay-1.example', 'a', 'localhost', '[::1]', '1.2.3', '01.2.3.4']) t.equal(codeOf(() => encodeExtend({ ...base, host })), 'MM_ERR_RELAY_MSG', `encode host ${JSON.stringify(host).slice(0, 16)}`)
  t.equal(codeOf(() => encodeExtend({ ...base, host: '1.2.3.4', fingerprint: Buffer.alloc(31) })), 'MM_ERR_LENGTH')
  const good = encodeExtend({ ...base, host: '1.2.3.4' }) // host at 33..39, port at 40
  const badHost = Buffer.from(good); badHost[33] = 0x20
  t.equal(codeOf(() => decodeExtend(badHost)), 'MM_ERR_RELAY_MSG', 'space in host')
  // a name on the wire (a hand-made EXTEND: encode refuses it) is refused at decode: a relay never resolves
  const named = Buffer.from(good); named.write('r1.evil', 33, 'ascii')
  t.equal(codeOf(() => decodeExtend(named)), 'MM_ERR_RELAY_MSG', 'hostname in EXTEND refused')
  const port0 = Buffer.from(good); port0.writeUInt16BE(0, 40)
  t.equal(codeOf(() => decodeExtend(port0)), 'MM_ERR_RELAY_MSG', 'port 0')
  const hl0 = Buffer.from(good); hl0[32] = 0
  t.equal(codeOf(() => decodeExtend(hl0)), 'MM_ERR_LENGTH', 'host length 0')
  const hlBig = Buffer.from(good); hlBig[32] = 255
  t.equal(codeOf(() => decodeExtend(hlBig)), 'MM_ERR_LENGTH', 'host length beyond the body')
})

t.test('EXTEND: every truncation that cuts into fp|host|port is refused', async t => {
  const b = hex(v.extend.hex)
  const out: string[] = []
  for (let n = 0; n < 44; n++) out.push(codeOf(() => decodeExtend(b.subarray(0, n))))
  t.same(tally(out), { MM_ERR_LENGTH: 44 })
  // cutting into the CREATE is not EXTEND's to judge: parseCreate does (oaep-x25519.test.ts)
  t.equal(decodeExtend(b.subarray(0, 44)).create.length, 0)
})

t.test('EXTEND: bit flips in the host length and host bytes never throw untyped', async t => {
  const b = hex(v.extend.hex)
  const out: string[] = []
  for (let bit = 32 * 8; bit < 44 * 8; bit++) out.push(codeOf(() => decodeExtend(flipBit(b, bit))))
  t.same(Object.keys(tally(out)).filter((k) => !['NO_THROW', 'MM_ERR_LENGTH', 'MM_ERR_RELAY_MSG'].includes(k)), [])
})

t.test('ERROR vector, round trip and bounds', async t => {
  const b = encodeError({ code: v.error.code, reason: v.error.reason })
  t.equal(b.toString('hex'), v.error.hex)
  t.same(decodeError(b), { code: HopError.NOT_LISTED, reason: v.error.reason })
  t.equal(encodeError(decodeError(b)).toString('hex'), v.error.hex, 'identical bytes')
  t.equal(encodeError({ code: 5, reason: 'x'.repeat(500) }).length, 202, 'reason truncated to 200 bytes')
  t.equal(codeOf(() => decodeError(Buffer.alloc(0))), 'MM_ERR_LENGTH')
  t.equal(codeOf(() => decodeError(Buffer.alloc(1))), 'MM_ERR_LENGTH')
  t.equal(codeOf(() => decodeError(Buffer.alloc(203))), 'MM_ERR_LENGTH', 'oversized')
  t.equal(codeOf(() => decodeError(Buffer.alloc(2))), 'NO_THROW', 'empty reason is fine')
  t.same([HopError.NOT_LISTED, HopError.UNREACHABLE, HopError.HANDSHAKE, HopError.BUSY, HopError.PROTOCOL, HopError.IN_USE, HopError.INTEGRITY], [1, 2, 3, 4, 5, 6, 7], 'codes are wire values')
})

t.test('DATA vector, round trip and bounds', async t => {
  const b = encodeData({ streamId: v.data.streamId, flags: v.data.flags, offset: v.data.offset, total: v.data.total, data: hex(v.data.data) })
  t.equal(b.toString('hex'), v.data.hex)
  t.equal(DATA_HEADER, 13, 'stream id | flags | offset | total')
  const d = decodeData(b)
  t.same({ streamId: d.streamId, flags: d.flags, offset: d.offset, total: d.total, data: d.data.toString('hex') }, { streamId: 7, flags: DataFlag.END, offset: 100, total: 113, data: v.data.data })
  t.equal(encodeData(d).toString('hex'), v.data.hex, 'identical bytes')
  const out: string[] = []
  for (let n = 0; n < DATA_HEADER; n++) out.push(codeOf(() => decodeData(b.subarray(0, n))))
  t.same(tally(out), { MM_ERR_LENGTH: DATA_HEADER })
  const header = (id: string, flags: string, offset = '00000000', total = '00000000') => Buffer.from(id + flags + offset + total, 'hex')
  t.equal(codeOf(() => decodeData(header('00000000', '01'))), 'MM_ERR_RELAY_MSG', 'stream id 0')
  for (let f = 4; f < 256; f *= 2) t.equal(codeOf(() => decodeData(header('00000001', f.toString(16).padStart(2, '0')))), 'MM_ERR_RELAY_MSG', `flag ${f}`)
  t.equal(codeOf(() => decodeData(header('00000001', '02'))), 'NO_THROW', 'a bare RESET')
  t.same(resetData(9), header('00000009', '02'), 'resetData is the bare RESET')
  t.equal(codeOf(() => decodeData(header('00000001', '03'))), 'MM_ERR_RELAY_MSG', 'RESET with END')
  t.equal(codeOf(() => decodeData(header('00000001', '02', '00000001'))), 'MM_ERR_RELAY_MSG', 'RESET with an offset')
  t.equal(codeOf(() => decodeData(header('00000001', '02', '00000000', '00000001'))), 'MM_ERR_RELAY_MSG', 'RESET with a total')
  t.equal(codeOf(() => decodeData(Buffer.concat([header('00000001', '02'), Buffer.from('x')]))), 'MM_ERR_RELAY_MSG', 'RESET with data')
  const m = { streamId: 1, flags: 0, offset: 0, total: 0, data: Buffer.alloc(0) }
  t.equal(codeOf(() => encodeData({ ...m, streamId: 0 })), 'MM_ERR_RELAY_MSG')
  t.equal(codeOf(() => encodeData({ ...m, streamId: 2 ** 32 })), 'MM_ERR_RELAY_MSG')
  t.equal(codeOf(() => encodeData({ ...m, offset: -1 })), 'MM_ERR_RELAY_MSG')
  t.equal(codeOf(() => encodeData({ ...m, total: 2 ** 32 })), 'MM_ERR_RELAY_MSG')
})
