// The channel cell: the only frame that travels between two hops (one WebSocket
// binary message each). docs/PROTOCOL.md §2.
//
//   0       4      5                                   2048
//   +-------+------+------------------------------------+
//   | circ  | cmd  | data (the outermost layer, padded) |
//   +-------+------+------------------------------------+
//   circ: u32 BE, chosen by the side that opened the channel, never 0
//   cmd:  ChannelCommand
import { MarshmelloError, lengthError } from '../../errors.js'
import { CELL_DATA, CELL_SIZE, LINK_HEADER } from './constants.js'
import { fillRandomPadding } from '../crypto/primitives.js'

export enum ChannelCommand {
  CREATE = 1,
  CREATED = 2,
  RELAY = 3,
  DESTROY = 4,
  /** a relay proves its listed identity to the hop it opened the channel to (§2.3) */
  AUTH = 5,
}

export interface ChannelCell {
  circId: number
  cmd: ChannelCommand
  /** exactly CELL_DATA bytes */
  data: Buffer
}

/** Builds a cell; `data` shorter than CELL_DATA is padded with random bytes. */
export function encodeChannelCell (circId: number, cmd: ChannelCommand, data: Uint8Array): Buffer {
  if (!Number.isInteger(circId) || circId <= 0 || circId > 0xffffffff) {
    throw new MarshmelloError('MM_ERR_CIRC_ID', `circuit id must be 1..2^32-1, got ${circId}`)
  }
  if (data.length > CELL_DATA) throw lengthError('cell data', `at most ${CELL_DATA}`, data.length)
  const out = Buffer.allocUnsafe(CELL_SIZE)
  out.writeUInt32BE(circId, 0)
  out[4] = cmd
  out.set(data, LINK_HEADER)
  if (data.length < CELL_DATA) fillRandomPadding(out.subarray(LINK_HEADER + data.length))
  return out
}

/** Parses one cell. Throws MM_ERR_LENGTH, MM_ERR_CIRC_ID or MM_ERR_CHANNEL_CMD. */
export function decodeChannelCell (bytes: Uint8Array): ChannelCell {
  if (bytes.length !== CELL_SIZE) throw lengthError('channel cell', String(CELL_SIZE), bytes.length)
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const circId = buf.readUInt32BE(0)
  if (circId === 0) throw new MarshmelloError('MM_ERR_CIRC_ID', 'circuit id 0 is reserved')
  const cmd = buf[4]
  if (!(cmd in ChannelCommand) || cmd === 0) throw new MarshmelloError('MM_ERR_CHANNEL_CMD', `unknown channel command ${cmd}`)
  return { circId, cmd, data: buf.subarray(LINK_HEADER) }
}
