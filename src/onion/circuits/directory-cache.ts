// A relay as a directory cache (docs/PROTOCOL.md §7.3), the analogue of Tor's BEGIN_DIR on a
// one-hop circuit (dir-spec, "Downloading directory information through the guard"): a
// client asks its guard for the consensus over a circuit to the guard alone, so that after
// bootstrap no other relay ever sees the client's address at a directory fetch. The request
// is one stream of one DATA piece carrying the API request `GET /consensus`; the answer is
// the consensus exactly as the relay received it (signed: the relay cannot alter it, only
// withhold it or serve an older one, which the client refuses), as DATA pieces this hop
// originates. Pure: the relay role passes the document it holds.
import { DataFlag, decodeData } from '../cells/relay-msg.js'
import { BACKWARD_BODY } from '../cells/constants.js'
import { decodeRequest, encodeResponse, type ApiResponse } from '../streams/envelope.js'
import { fragment } from '../streams/reassembly.js'
import { errorResponse } from './final-hop.js'

/** the one path a directory cache answers */
export const DIRECTORY_PATH = '/consensus'

/** what the relay answers when the asker is over its directory budget (the caller meters, this stays pure) */
export const DIRECTORY_REFUSED: unique symbol = Symbol('directory request over budget')

/** the signed consensus as received, null while the relay has none, DIRECTORY_REFUSED when the asker is over its budget */
export type DirectoryDocument = () => string | null | typeof DIRECTORY_REFUSED

/**
 * The DATA bodies that answer one DATA body sent to this hop on a circuit that ends here:
 * the consensus, or an error response naming its code. Nothing for a RESET or a body that
 * is not DATA (a RESET needs no answer; the caller answers a malformed body itself).
 */
export function answerDirectoryRequest (body: Buffer, doc: DirectoryDocument): Buffer[] | null {
  let msg
  try {
    msg = decodeData(body)
  } catch {
    return null
  }
  if (msg.flags & DataFlag.RESET) return []
  const reply = (res: ApiResponse) => fragment(msg.streamId, encodeResponse(res), BACKWARD_BODY)
  // the cache keeps no stream state: a request is one piece, complete in itself
  if (msg.offset !== 0 || msg.total !== msg.data.length || !(msg.flags & DataFlag.END)) {
    return reply(errorResponse(400, 'MM_ERR_DIR_REQUEST', 'a directory request must be one complete DATA piece'))
  }
  let req
  try {
    req = decodeRequest(msg.data)
  } catch {
    return reply(errorResponse(400, 'MM_ERR_ENVELOPE', 'malformed request envelope'))
  }
  if (req.method !== 'GET' || req.path !== DIRECTORY_PATH) return reply(errorResponse(404, 'MM_ERR_DIR_REQUEST', `a directory cache answers GET ${DIRECTORY_PATH} only`))
  const raw = doc()
  if (raw === null) return reply(errorResponse(503, 'MM_ERR_NO_CONSENSUS', 'this relay has no consensus yet'))
  if (raw === DIRECTORY_REFUSED) return reply(errorResponse(429, 'MM_ERR_DIR_RATE', 'too many directory requests from this address lately; a client needs one every few minutes'))
  try {
    return reply({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(raw, 'utf8') })
  } catch {
    // a consensus over one stream message (1 MiB, §6) cannot be served this way
    return reply(errorResponse(503, 'MM_ERR_TOO_LARGE', 'the consensus is larger than one stream message'))
  }
}
