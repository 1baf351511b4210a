// Bodies of the relay commands a hop understands (docs/PROTOCOL.md §5), one
// encode/decode pair each. Every decoder checks lengths first and throws a
// MarshmelloError with code MM_ERR_LENGTH or MM_ERR_RELAY_MSG.
//
//   EXTEND   = fp (32) | hostLen (u8) | host (ASCII IP literal) | port (u16 BE) | CREATE body
//   EXTENDED = CREATED body (64)
//   ERROR    = code (u16 BE) | reason (UTF-8, ≤ 200 bytes)
//   DATA     = stream id (u32 BE, ≠ 0) | flags (u8: 1 = END, 2 = RESET) | offset (u32 BE)
//              | total (u32 BE) | data          (§6: offset of this piece, length of the whole message)
import { MarshmelloError, lengthError } from '../../errors.js'
import { parseIp } from '../directory/address.js'

export interface Extend { fingerprint: Buffer, host: string, port: number, create: Buffer }

/** an EXTEND names its next hop by IP literal only: a relay never resolves a name (PROTOCOL §5.2) */
const isIpLiteral = (h: string): boolean => h.length <= 45 && parseIp(h) !== null && !h.startsWith('[')

export function encodeExtend (m: Extend): Buffer {
  if (m.fingerprint.length !== 32) throw lengthError('fingerprint', '32', m.fingerprint.length)
  if (!isIpLiteral(m.host)) throw new MarshmelloError('MM_ERR_RELAY_MSG', `EXTEND host must be an IP literal, not ${JSON.stringify(m.host)}`)
  const host = Buffer.from(m.host, 'ascii')
  const out = Buffer.alloc(32 + 1 + host.length + 2 + m.create.length)
  m.fingerprint.copy(out, 0)
  out[32] = host.length
  host.copy(out, 33)
  out.writeUInt16BE(m.port, 33 + host.length)
  m.create.copy(out, 35 + host.length)
  return out
}

export function decodeExtend (b: Buffer): Extend {
  if (b.length < 36) throw lengthError('EXTEND', 'at least 36', b.length)
  const hl = b[32]
  if (hl === 0 || 35 + hl > b.length) throw lengthError('EXTEND host', `1..${b.length - 35}`, hl)
  const host = b.subarray(33, 33 + hl).toString('ascii')
  if (!isIpLiteral(host)) throw new MarshmelloError('MM_ERR_RELAY_MSG', 'EXTEND host is not an IP literal (names are never resolved)')
  const port = b.readUInt16BE(33 + hl)
  if (port === 0) throw new MarshmelloError('MM_ERR_RELAY_MSG', 'EXTEND port 0')
  return { fingerprint: Buffer.from(b.subarray(0, 32)), host, port, create: Buffer.from(b.subarray(35 + hl)) }
}

export interface RelayErrorMsg { code: number, reason: string }

/** ERROR codes (§5.4) */
export enum HopError {
  /** EXTEND target not in the signed consensus (P7) */
  NOT_LISTED = 1,
  /** the next hop could not be reached or did not answer */
  UNREACHABLE = 2,
  /** the next hop failed the handshake */
  HANDSHAKE = 3,
  /** the hop is overloaded (circuit limit or rate limit) */
  BUSY = 4,
  /** the request was malformed */
  PROTOCOL = 5,
  /** CREATE: this circuit id is already in use from the sender's address; retry with another */
  IN_USE = 6,
  /** DESTROY: a cell did not open at its position (dropped, repeated, reordered or altered before this hop, §3) */
  INTEGRITY = 7,
}

export function encodeError (m: RelayErrorMsg): Buffer {
  const reason = Buffer.from(m.reason, 'utf8').subarray(0, 200)
  const out = Buffer.alloc(2 + reason.length)
  out.writeUInt16BE(m.code, 0)
  reason.copy(out, 2)
  return out
}

export function decodeError (b: Buffer): RelayErrorMsg {
  if (b.length < 2 || b.length > 202) throw lengthError('ERROR', '2..202', b.length)
  return { code: b.readUInt16BE(0), reason: b.subarray(2).toString('utf8') }
}

export const DATA_HEADER = 13
export const DataFlag = { END: 1, RESET: 2 } as const

/**
 * One piece of a stream's message (§6): `offset` is where `data` starts in the message,
 * `total` the whole message's length (the same in every piece); END marks the piece that
 * reaches `total`. RESET (no data, offset and total 0) ends the stream without a message.
 */
export interface DataMsg { streamId: number, flags: number, offset: number, total: number, data: Buffer }

const U32 = 0xffffffff

export function encodeData (m: DataMsg): Buffer {
  if (!Number.isInteger(m.streamId) || m.streamId <= 0 || m.streamId > U32) throw new MarshmelloError('MM_ERR_RELAY_MSG', 'stream id must be 1..2^32-1')
  for (const [name, v] of [['offset', m.offset], ['total', m.total]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > U32) throw new MarshmelloError('MM_ERR_RELAY_MSG', `DATA ${name} must be 0..2^32-1`)
  }
  const out = Buffer.alloc(DATA_HEADER + m.data.length)
  out.writeUInt32BE(m.streamId, 0)
  out[4] = m.flags
  out.writeUInt32BE(m.offset, 5)
  out.writeUInt32BE(m.total, 9)
  m.data.copy(out, DATA_HEADER)
  return out
}

/** Throws MM_ERR_LENGTH (shorter than the header) or MM_ERR_RELAY_MSG (stream id 0, unknown flags, END with RESET, a RESET with data) */
export function decodeData (b: Buffer): DataMsg {
  if (b.length < DATA_HEADER) throw lengthError('DATA', `at least ${DATA_HEADER}`, b.length)
  const streamId = b.readUInt32BE(0)
  if (streamId === 0) throw new MarshmelloError('MM_ERR_RELAY_MSG', 'stream id 0 is reserved')
  const flags = b[4]
  if (flags & ~3) throw new MarshmelloError('MM_ERR_RELAY_MSG', `unknown DATA flags ${flags}`)
  const offset = b.readUInt32BE(5)
  const total = b.readUInt32BE(9)
  const data = b.subarray(DATA_HEADER)
  if ((flags & DataFlag.RESET) && (flags !== DataFlag.RESET || offset !== 0 || total !== 0 || data.length !== 0)) {
    throw new MarshmelloError('MM_ERR_RELAY_MSG', 'RESET carries no END, offset, total or data')
  }
  return { streamId, flags, offset, total, data }
}

/** the DATA body that resets a stream */
export const resetData = (streamId: number): Buffer => encodeData({ streamId, flags: DataFlag.RESET, offset: 0, total: 0, data: Buffer.alloc(0) })
