// Sizes fixed by the wire format (docs/PROTOCOL.md §2–§4). Every cell on every
// link is CELL_SIZE bytes (P3); the layer overheads below fix how much of a cell
// each hop's layer and the innermost payload may use.

/** every channel cell, every link, every direction */
export const CELL_SIZE = 2048
/** channel cell header: circuit id (u32) + channel command (u8) */
export const LINK_HEADER = 5
/** bytes of a channel cell after its header: the outermost layer, padded */
export const CELL_DATA = CELL_SIZE - LINK_HEADER
/** a layer's clear prefix: sealed length (u16). No counter travels: the nonce is the layer's position (§3) */
export const LAYER_PREFIX = 2
/** GCM tag */
export const LAYER_TAG = 16
/** inside a layer's plaintext: relay command (u8) + body length (u16) */
export const LAYER_HEADER = 3
/** what one hop's layer adds around a body */
export const LAYER_OVERHEAD = LAYER_PREFIX + LAYER_TAG + LAYER_HEADER
/** longest circuit a cell can carry (client + up to 7 relays + the server) */
export const MAX_HOPS = 8
/** fixed body size of every backward layer a hop originates, so its length says nothing */
export const BACKWARD_BODY = CELL_DATA - LAYER_OVERHEAD * MAX_HOPS

/** most body bytes a forward cell can carry to hop number `hop` (1-based) */
export function forwardBodyMax (hop: number): number {
  return CELL_DATA - LAYER_OVERHEAD * hop
}

/** sealed length of the layer that hop `hop` (1-based) receives on a forward cell */
export function forwardSealedLength (hop: number): number {
  return CELL_DATA - LAYER_PREFIX - LAYER_TAG - LAYER_OVERHEAD * (hop - 1)
}
