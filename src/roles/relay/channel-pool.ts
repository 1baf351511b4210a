// The relay's channels: every open one by id, and at most one outgoing channel per
// listed hop, opened on first use through the injected `open` (a WebSocket over TLS
// in production, a memory channel in tests). What travels on them is relay-core's.
import type { Descriptor } from '../../onion/directory/descriptor.js'
import type { Channel } from '../common/channel-types.js'

export interface RelayChannelPoolInit {
  /** opens a channel to a listed hop (the pinned certificate and AUTH are the opener's business) */
  open: (target: Descriptor) => Promise<Channel>
  /** a channel joined the pool (accepted or opened) */
  added: (ch: Channel) => void
  /** a channel of the pool closed */
  closed: (ch: Channel) => void
}

export class RelayChannelPool {
  private readonly all = new Map<string, Channel>()
  /** fingerprint (hex) → the outgoing channel, while it opens and while it is open */
  private readonly outgoing = new Map<string, Promise<Channel>>()

  constructor (private readonly init: RelayChannelPoolInit) {}

  get size (): number { return this.all.size }

  values (): IterableIterator<Channel> { return this.all.values() }

  /** the open channel with this (local) id */
  byId (id: string): Channel | undefined { return this.all.get(id) }

  /** the channels this relay opened */
  initiated (): Channel[] { return [...this.all.values()].filter((ch) => ch.initiator) }

  add (ch: Channel): void {
    this.all.set(ch.id, ch)
    this.init.added(ch)
    ch.on('close', () => {
      this.all.delete(ch.id)
      this.init.closed(ch)
    })
  }

  /** the open outgoing channel to this hop, if there is one now */
  current (fingerprintHex: string): Channel | undefined {
    for (const ch of this.all.values()) if (ch.initiator && ch.peerFingerprint === fingerprintHex && !ch.closed) return ch
    return undefined
  }

  /** the one channel to a listed hop, opened on first use; rejects when `target` is unknown or unreachable */
  to (fingerprintHex: string, target: Descriptor | undefined): Promise<Channel> {
    const existing = this.outgoing.get(fingerprintHex)
    if (existing) return existing
    if (!target) return Promise.reject(new Error('not listed'))
    const p = this.init.open(target).then((ch) => {
      // closed before it was handed over (the peer refused it at once): never pooled
      if (ch.closed) throw new Error('closed on opening')
      ch.peerFingerprint = fingerprintHex
      ch.on('close', () => { if (this.outgoing.get(fingerprintHex) === p) this.outgoing.delete(fingerprintHex) })
      this.add(ch)
      return ch
    })
    p.catch(() => { if (this.outgoing.get(fingerprintHex) === p) this.outgoing.delete(fingerprintHex) })
    this.outgoing.set(fingerprintHex, p)
    return p
  }

  closeAll (code: number, reason: string): void {
    for (const ch of this.all.values()) ch.close(code, reason)
  }
}
