// An in-memory circuit for the circuit tests (not a test): a client, relays and a final
// hop, each a HopState, built with real handshakes (CREATE to hop 1, then EXTEND per
// hop, as src/roles/client/circuit.ts does), and cells passed between hops the way a
// relay does: peel one layer, re-pad the body to a whole cell (P3).
import { CELL_DATA, LINK_HEADER } from '../../../src/onion/cells/constants.js'
import { ChannelCommand, encodeChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { RelayCommand } from '../../../src/onion/cells/layer.js'
import { decodeExtend, encodeExtend } from '../../../src/onion/cells/relay-msg.js'
import { ClientOnion } from '../../../src/onion/circuits/client-onion.js'
import { HopState } from '../../../src/onion/circuits/hop-state.js'
import { clientFinish, clientStart, relayRespond } from '../../../src/onion/handshake/oaep-x25519.js'
import { rsaFingerprint, rsaGenerate, type RsaIdentity } from '../../../src/onion/crypto/primitives.js'
import { fixedIdentity } from '../helpers.js'

export interface Chain {
  onion: ClientOnion
  hops: HopState[]
  /** every cell data length that crossed a link, in order */
  sizes: number[]
  /** delivers forward data to hop `from` (1-based) and on; returns the hop that kept it */
  forward (data: Buffer, from?: number, tap?: (hop: number, data: Buffer) => Buffer): { hop: number, cmd: RelayCommand, body: Buffer }
  /** a backward cell originated at hop k, wrapped by every earlier hop; returns what reaches the client */
  backward (k: number, cmd: RelayCommand, body: Buffer): Buffer
}

/** pads `data` to a whole cell the way encodeChannelCell does, and returns the cell data */
export const repad = (data: Buffer): Buffer => encodeChannelCell(1, ChannelCommand.RELAY, data).subarray(LINK_HEADER)

export const identities = (n: number): RsaIdentity[] => {
  const ids: RsaIdentity[] = []
  for (let i = 0; i < n - 1; i++) ids.push(rsaGenerate(2048))
  ids.push({ publicDer: fixedIdentity.publicDer, privateDer: fixedIdentity.privateDer })
  return ids
}

export function buildChain (ids: RsaIdentity[]): Chain {
  const onion = new ClientOnion()
  const hops: HopState[] = []
  const sizes: number[] = []
  const chain: Chain = {
    onion,
    hops,
    sizes,
    forward (data, from = 1, tap) {
      let cur = data
      for (let h = from; h <= hops.length; h++) {
        if (tap) cur = tap(h, cur)
        sizes.push(cur.length)
        const layer = hops[h - 1].peel(cur)
        if (layer.cmd !== RelayCommand.FORWARD) return { hop: h, cmd: layer.cmd, body: layer.body }
        cur = repad(layer.body)
      }
      throw new Error('FORWARD past the last hop')
    },
    backward (k, cmd, body) {
      let cur = repad(hops[k - 1].originate(cmd, body))
      sizes.push(cur.length)
      for (let h = k - 1; h >= 1; h--) {
        cur = repad(hops[h - 1].wrapBackward(cur))
        sizes.push(cur.length)
      }
      return cur
    },
  }
  // hop 1: CREATE straight over the link
  const c1 = clientStart({ identityKey: ids[0].publicDer })
  const r1 = relayRespond({ identityPrivate: ids[0].privateDer, fingerprint: rsaFingerprint(ids[0].publicDer), create: repad(c1.create) })
  hops.push(new HopState(r1.keys))
  onion.addHop(rsaFingerprint(ids[0].publicDer), clientFinish(c1.state, repad(r1.created)))
  // hops 2..n: EXTEND to the previous hop, which runs CREATE with the next one
  for (let i = 2; i <= ids.length; i++) {
    const fp = rsaFingerprint(ids[i - 1].publicDer)
    const c = clientStart({ identityKey: ids[i - 1].publicDer })
    const got = chain.forward(onion.wrapForward(i - 1, RelayCommand.EXTEND, encodeExtend({ fingerprint: fp, host: '127.0.0.1', port: 9000 + i, create: c.create })))
    if (got.hop !== i - 1 || got.cmd !== RelayCommand.EXTEND) throw new Error(`EXTEND reached hop ${got.hop}`)
    const ext = decodeExtend(got.body)
    const r = relayRespond({ identityPrivate: ids[i - 1].privateDer, fingerprint: ext.fingerprint, create: repad(ext.create) })
    hops.push(new HopState(r.keys))
    hops[i - 2].nextCircId = 100 + i
    hops[i - 2].nextFingerprint = ext.fingerprint
    const back = onion.unwrapBackward(chain.backward(i - 1, RelayCommand.EXTENDED, r.created))
    if (back.hop !== i - 1 || back.cmd !== RelayCommand.EXTENDED) throw new Error(`EXTENDED came from hop ${back.hop}`)
    onion.addHop(fp, clientFinish(c.state, back.body))
  }
  return chain
}

export { CELL_DATA }
