// The API envelope (docs/PROTOCOL.md §6): the stored request and response encode byte
// for byte and decode back; every truncation and malformed field is refused with
// MM_ERR_LENGTH or MM_ERR_ENVELOPE, never an untyped error (P9).
import t from 'tap'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../../src/onion/streams/envelope.js'
import { codeOf, flipBit, hex, tally, vectors } from '../helpers.js'

const v = vectors('onion-cells.json')
const typed = (counts: Record<string, number>, allowed: string[]) => Object.keys(counts).filter((k) => !allowed.includes(k))

t.test('request vector and round trip', async t => {
  const b = encodeRequest({ method: v.request.method, path: v.request.path, headers: v.request.headers, body: hex(v.request.body) })
  t.equal(b.toString('hex'), v.request.hex)
  const d = decodeRequest(b)
  t.same({ ...d, body: d.body.toString('hex') }, { method: 'POST', path: v.request.path, headers: v.request.headers, body: v.request.body })
  t.equal(encodeRequest(d).toString('hex'), v.request.hex, 'identical bytes')
  // layout: version | methodLen | method | pathLen u16 | path | hdrLen u16 | headers | body
  t.equal(b[0], 1); t.equal(b[1], 4); t.equal(b.subarray(2, 6).toString(), 'POST'); t.equal(b.readUInt16BE(6), v.request.path.length)
})

t.test('response vector and round trip', async t => {
  const b = encodeResponse({ status: v.response.status, headers: v.response.headers, body: hex(v.response.body) })
  t.equal(b.toString('hex'), v.response.hex)
  const d = decodeResponse(b)
  t.same({ ...d, body: d.body.toString('hex') }, { status: 201, headers: v.response.headers, body: v.response.body })
  t.equal(encodeResponse(d).toString('hex'), v.response.hex, 'identical bytes')
})

t.test('request: every truncation of the framing, every bit flip: typed errors only', async t => {
  const b = hex(v.request.hex)
  const bodyStart = b.length - hex(v.request.body).length
  const cut: string[] = []
  for (let n = 0; n < bodyStart; n++) cut.push(codeOf(() => decodeRequest(b.subarray(0, n))))
  t.same(typed(tally(cut), ['MM_ERR_LENGTH', 'MM_ERR_ENVELOPE']), [], 'truncated framing refused')
  t.notOk(cut.includes('NO_THROW'), 'no truncation of the framing decodes')
  const flips: string[] = []
  for (let bit = 0; bit < b.length * 8; bit++) flips.push(codeOf(() => decodeRequest(flipBit(b, bit))))
  t.same(typed(tally(flips), ['NO_THROW', 'MM_ERR_LENGTH', 'MM_ERR_ENVELOPE']), [], 'flips decode or are refused with a code')
})

t.test('request: field checks', async t => {
  const enc = (m: string, p: string, h: Record<string, string> = {}) => () => encodeRequest({ method: m, path: p, headers: h, body: Buffer.alloc(0) })
  t.equal(codeOf(enc('TRACE', '/')), 'MM_ERR_ENVELOPE')
  t.equal(codeOf(enc('GET', 'x')), 'MM_ERR_ENVELOPE')
  t.equal(codeOf(enc('GET', '')), 'MM_ERR_ENVELOPE')
  t.equal(codeOf(enc('GET', '/' + 'a'.repeat(4096))), 'MM_ERR_ENVELOPE')
  t.equal(codeOf(enc('GET', '/', { a: 'x'.repeat(9000) })), 'MM_ERR_LENGTH')
  t.equal(decodeRequest(encodeRequest({ method: 'get', path: '/', headers: { 'X-Up': '1' }, body: Buffer.alloc(0) })).headers['x-up'], '1', 'method upper-cased, header names lower-cased on decode')
  const req = (headers: string) => { const h = Buffer.from(headers); return Buffer.concat([Buffer.from('010347455400012f', 'hex'), Buffer.from([h.length >> 8, h.length & 255]), h]) }
  for (const h of ['[]', 'null', '"s"', '{"a":1}', '{bad', '']) t.equal(codeOf(() => decodeRequest(req(h))), 'MM_ERR_ENVELOPE', `headers ${h}`)
})

t.test('response: truncation, version, headers', async t => {
  const b = hex(v.response.hex)
  const cut: string[] = []
  for (let n = 0; n < 5 + JSON.stringify(v.response.headers).length; n++) cut.push(codeOf(() => decodeResponse(b.subarray(0, n))))
  t.same(typed(tally(cut), ['MM_ERR_LENGTH', 'MM_ERR_ENVELOPE']), [])
  t.notOk(cut.includes('NO_THROW'))
  const v2 = Buffer.from(b); v2[0] = 2
  t.equal(codeOf(() => decodeResponse(v2)), 'MM_ERR_ENVELOPE')
  const flips: string[] = []
  for (let bit = 0; bit < b.length * 8; bit++) flips.push(codeOf(() => decodeResponse(flipBit(b, bit))))
  t.same(typed(tally(flips), ['NO_THROW', 'MM_ERR_LENGTH', 'MM_ERR_ENVELOPE']), [])
})
