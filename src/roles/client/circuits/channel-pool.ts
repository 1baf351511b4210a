// The client's channels to entry relays (docs/PROTOCOL.md §2.1): one per relay, shared
// by every circuit through it, opened on first use and forgotten when it closes. Cells
// are handed to the circuit whose id they carry. What a circuit does with them is
// circuit.ts's; how a channel is secured is src/roles/common/channel.ts's.
import { randomInt } from '../../../onion/crypto/random.js'
import type { ChannelCell } from '../../../onion/cells/channel-cell.js'
import type { Descriptor } from '../../../onion/directory/descriptor.js'
import { CLOSE, connectChannel, type Channel } from '../../common/channel.js'

/** opens a channel to a listed hop, pinning its certificate */
export type Dial = (d: Descriptor, opts: { localAddress?: string, timeoutMs: number }) => Promise<Channel>

const dialTls: Dial = (d, o) => connectChannel({ host: d.host, port: d.port, tlsCert: d.tlsCert, tlsFingerprint: d.tlsFingerprint, tlsNextCert: d.tlsNextCert, tlsNextFingerprint: d.tlsNextFingerprint, localAddress: o.localAddress, timeoutMs: o.timeoutMs })

/** one channel to an entry relay and the circuits on it, by circuit id */
export class ClientChannel {
  readonly circuits = new Map<number, (cell: ChannelCell) => void>()
  /** what each circuit does when the channel closes (one listener for all of them) */
  readonly closers = new Map<number, () => void>()
  constructor (readonly ch: Channel) {
    ch.on('cell', (cell) => this.circuits.get(cell.circId)?.(cell))
    ch.once('close', () => { for (const f of [...this.closers.values()]) f() })
  }

  /** forgets a circuit on this channel */
  drop (circId: number): void {
    this.circuits.delete(circId)
    this.closers.delete(circId)
  }

  newCircId (): number {
    let id: number
    do id = randomInt(1, 0xffffffff); while (this.circuits.has(id))
    return id
  }
}

export class ChannelPool {
  private readonly channels = new Map<string, Promise<ClientChannel>>()
  /** `localAddress`: source address for every channel; `dial`: how channels are opened (tests pass memory channels) */
  constructor (private readonly localAddress?: string, private readonly dial: Dial = dialTls) {}

  get (d: Descriptor, timeoutMs: number): Promise<ClientChannel> {
    const k = d.fingerprint
    let p = this.channels.get(k)
    if (!p) {
      p = this.dial(d, { localAddress: this.localAddress, timeoutMs })
        .then((ch) => {
          const c = new ClientChannel(ch)
          ch.on('close', () => { if (this.channels.get(k) === p) this.channels.delete(k) })
          return c
        })
      p.catch(() => { if (this.channels.get(k) === p) this.channels.delete(k) })
      this.channels.set(k, p)
    }
    return p
  }

  async close (): Promise<void> {
    const all = [...this.channels.values()]
    this.channels.clear()
    for (const p of all) (await p.catch(() => null))?.ch.close(CLOSE.NORMAL, 'client closing')
  }
}
