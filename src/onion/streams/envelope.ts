// The API request and response a stream carries end to end (docs/PROTOCOL.md §6):
// the final hop turns a request into a call on its handler, and the answer into
// a response. Binary, no JSON in the framing; headers are a small JSON object.
//
//   request  = 1 (u8) | methodLen (u8) | method | pathLen (u16) | path | hdrLen (u16) | headers JSON | body
//   response = 1 (u8) | status (u16) | hdrLen (u16) | headers JSON | body
import { MarshmelloError, lengthError } from '../../errors.js'

export interface ApiRequest {
  method: string
  path: string
  headers: Record<string, string>
  body: Buffer
}

export interface ApiResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'])

function encodeHeaders (h: Record<string, string>): Buffer {
  const b = Buffer.from(JSON.stringify(h), 'utf8')
  if (b.length > 8192) throw lengthError('headers', 'at most 8192', b.length)
  return b
}

function decodeHeaders (b: Buffer): Record<string, string> {
  let v: unknown
  try {
    v = JSON.parse(b.toString('utf8'))
  } catch {
    throw new MarshmelloError('MM_ERR_ENVELOPE', 'headers are not JSON')
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new MarshmelloError('MM_ERR_ENVELOPE', 'headers must be an object')
  const out: Record<string, string> = {}
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new MarshmelloError('MM_ERR_ENVELOPE', `header ${k} is not a string`)
    out[k.toLowerCase()] = val
  }
  return out
}

export function encodeRequest (r: ApiRequest): Buffer {
  const method = Buffer.from(r.method.toUpperCase(), 'ascii')
  const path = Buffer.from(r.path, 'utf8')
  if (!METHODS.has(r.method.toUpperCase())) throw new MarshmelloError('MM_ERR_ENVELOPE', `unsupported method ${r.method}`)
  if (path.length === 0 || path.length > 4096 || path[0] !== 0x2f) throw new MarshmelloError('MM_ERR_ENVELOPE', 'path must start with / and be at most 4096 bytes')
  const hdr = encodeHeaders(r.headers)
  const out = Buffer.alloc(1 + 1 + method.length + 2 + path.length + 2 + hdr.length + r.body.length)
  let o = 0
  out[o++] = 1
  out[o++] = method.length
  o += method.copy(out, o)
  out.writeUInt16BE(path.length, o); o += 2
  o += path.copy(out, o)
  out.writeUInt16BE(hdr.length, o); o += 2
  o += hdr.copy(out, o)
  r.body.copy(out, o)
  return out
}

export function decodeRequest (b: Buffer): ApiRequest {
  const need = (n: number, o: number) => { if (o + n > b.length) throw lengthError('request envelope', `at least ${o + n}`, b.length) }
  need(2, 0)
  if (b[0] !== 1) throw new MarshmelloError('MM_ERR_ENVELOPE', `unknown envelope version ${b[0]}`)
  let o = 1
  const ml = b[o++]
  need(ml, o)
  const method = b.subarray(o, o + ml).toString('ascii'); o += ml
  if (!METHODS.has(method)) throw new MarshmelloError('MM_ERR_ENVELOPE', 'unsupported method')
  need(2, o)
  const pl = b.readUInt16BE(o); o += 2
  need(pl, o)
  const path = b.subarray(o, o + pl).toString('utf8'); o += pl
  if (!path.startsWith('/')) throw new MarshmelloError('MM_ERR_ENVELOPE', 'path must start with /')
  need(2, o)
  const hl = b.readUInt16BE(o); o += 2
  need(hl, o)
  const headers = decodeHeaders(b.subarray(o, o + hl)); o += hl
  return { method, path, headers, body: b.subarray(o) }
}

export function encodeResponse (r: ApiResponse): Buffer {
  const hdr = encodeHeaders(r.headers)
  const out = Buffer.alloc(5 + hdr.length + r.body.length)
  out[0] = 1
  out.writeUInt16BE(r.status, 1)
  out.writeUInt16BE(hdr.length, 3)
  hdr.copy(out, 5)
  r.body.copy(out, 5 + hdr.length)
  return out
}

export function decodeResponse (b: Buffer): ApiResponse {
  if (b.length < 5) throw lengthError('response envelope', 'at least 5', b.length)
  if (b[0] !== 1) throw new MarshmelloError('MM_ERR_ENVELOPE', `unknown envelope version ${b[0]}`)
  const status = b.readUInt16BE(1)
  const hl = b.readUInt16BE(3)
  if (5 + hl > b.length) throw lengthError('response headers', String(hl), b.length - 5)
  return { status, headers: decodeHeaders(b.subarray(5, 5 + hl)), body: b.subarray(5 + hl) }
}
