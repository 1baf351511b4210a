// The client's view of one circuit's crypto (docs/PROTOCOL.md §4): one forward
// sealer and one backward opener per hop, each counting its positions (the nonces of
// §3). wrapForward() builds the nested layers that carry a command to hop k;
// unwrapBackward() peels the layers of a cell coming back and says which hop
// originated it. A backward cell that does not open ends the circuit (the caller's
// job): the positions no longer agree with the hops'. No I/O.
import { MarshmelloError } from '../../errors.js'
import { CELL_DATA, LAYER_HEADER, MAX_HOPS, forwardBodyMax, forwardSealedLength } from '../cells/constants.js'
import { LayerOpener, LayerSealer, RelayCommand } from '../cells/layer.js'
import type { HopKeys } from '../handshake/oaep-x25519.js'

export interface ClientHop {
  fingerprint: Buffer
  forward: LayerSealer
  backward: LayerOpener
}

export interface Unwrapped {
  /** 1-based index of the hop that originated the cell */
  hop: number
  cmd: RelayCommand
  body: Buffer
}

export class ClientOnion {
  readonly hops: ClientHop[] = []

  addHop (fingerprint: Buffer, keys: HopKeys): void {
    if (this.hops.length >= MAX_HOPS) throw new MarshmelloError('MM_ERR_CIRCUIT', `a circuit has at most ${MAX_HOPS} hops`)
    this.hops.push({ fingerprint, forward: new LayerSealer(keys.forward), backward: new LayerOpener(keys.backward) })
  }

  get length (): number { return this.hops.length }

  /** Builds CELL_DATA bytes that deliver (cmd, body) to hop `target` (1-based). */
  wrapForward (target: number, cmd: RelayCommand, body: Uint8Array): Buffer {
    if (target < 1 || target > this.hops.length) throw new MarshmelloError('MM_ERR_CIRCUIT', `no hop ${target} on a ${this.hops.length}-hop circuit`)
    if (body.length > forwardBodyMax(target)) throw new MarshmelloError('MM_ERR_LENGTH', `body of ${body.length} bytes exceeds ${forwardBodyMax(target)} for hop ${target}`)
    let layer = this.hops[target - 1].forward.seal(cmd, body, forwardSealedLength(target))
    for (let i = target - 1; i >= 1; i--) {
      layer = this.hops[i - 1].forward.seal(RelayCommand.FORWARD, layer, LAYER_HEADER + layer.length)
    }
    if (layer.length !== CELL_DATA) throw new MarshmelloError('MM_ERR_INTERNAL', `forward cell is ${layer.length} bytes`)
    return layer
  }

  /**
   * Peels backward layers, each at its hop's next position. Throws MM_ERR_LAYER_AUTH (altered,
   * or a backward cell dropped, repeated or reordered on the way), MM_ERR_LENGTH or
   * MM_ERR_LAYER_FORMAT; after a throw the circuit is unusable (outer layers moved on).
   */
  unwrapBackward (data: Buffer): Unwrapped {
    let cur = data
    for (let i = 0; i < this.hops.length; i++) {
      const opened = this.hops[i].backward.open(cur)
      if (opened.cmd !== RelayCommand.FORWARD) return { hop: i + 1, cmd: opened.cmd, body: opened.body }
      cur = opened.body
    }
    throw new MarshmelloError('MM_ERR_LAYER_FORMAT', 'backward cell still layered after the last hop')
  }

  /** erase every key (the circuit is gone: P5) */
  wipe (): void {
    for (const h of this.hops) { h.forward.wipe(); h.backward.wipe() }
    this.hops.length = 0
  }
}
