// A relay's circuits (docs/PROTOCOL.md §5): the I/O shell around the pure middle hop
// (src/onion/circuits/middle-hop.ts). It owns the channels (channel-pool.ts), the
// local routing table (routing.ts), the session store and the timers, and wires
// cells to from-prev.ts and from-next.ts; it decides no protocol rule itself. Init
// (options) and components (store, consensus, clock, how channels open) are apart,
// libp2p style, so tests drive it over memory channels with a fake clock.
import { isMarshmelloError } from '../../errors.js'
import { CLOSE, type Channel, type ChannelAuthVerifier } from '../common/channel-types.js'
import type { Timer } from '../common/clock.js'
import { RelayChannelPool } from './channel-pool.js'
import { destroyFromPrev, fromPrev } from './from-prev.js'
import { fromNext, nextChannelClosed } from './from-next.js'
import type { RelayCounters } from './perform.js'
import { RelayContext, type RelayCoreComponents, type RelayCoreInit } from './relay-context.js'

export type { RelayCounters, TraceEvent } from './perform.js'
export type { RelayCoreComponents, RelayCoreInit } from './relay-context.js'

export class RelayCore {
  private readonly x: RelayContext
  private readonly sweepTimer: Timer
  private sweeping = false

  constructor (init: RelayCoreInit, components: RelayCoreComponents) {
    const { identity } = init
    const channels = new RelayChannelPool({
      // a relay proves its identity to the relays it extends to (§2.3); the server takes no AUTH
      open: (d) => components.openChannel(d, d.role === 'relay' ? { identityPrivate: identity.privateDer, fingerprint: identity.fingerprint, responderFingerprint: Buffer.from(d.fingerprint, 'hex') } : undefined),
      added: (ch) => {
        this.x.routes.open(ch)
        if (ch.initiator) ch.on('cell', (cell) => fromNext(this.x, ch, cell))
      },
      closed: (ch) => this.channelClosed(ch),
    })
    this.x = new RelayContext(init, components, channels)
    this.sweepTimer = this.x.clock.setInterval(() => { void this.sweep() }, init.sweepMs ?? 30_000)
  }

  get counters (): RelayCounters { return this.x.counters }

  get channelCount (): number { return this.x.channels.size }

  /** circuits this process routes locally (inbound circuits plus ids used on outgoing channels) */
  get tracked (): number { return this.x.routes.count(this.x.channels.initiated()) }

  /** a channel opened by a previous hop (or a client), built with `auth: core.channelAuth` */
  accept (ch: Channel): void {
    this.x.channels.add(ch)
    ch.on('auth', (r) => { if ('peer' in r) this.x.counters.channelsAuthenticated++; else this.x.counters.authRefused++ })
    ch.on('cell', (cell) => fromPrev(this.x, ch, cell))
  }

  /** how accepted channels check AUTH: against this relay's fingerprint and the relays (not the server) in its current consensus */
  get channelAuth (): ChannelAuthVerifier {
    return {
      fingerprint: this.x.init.identity.fingerprint,
      identityKey: (fp) => {
        const d = this.x.listed(fp)
        return d?.role === 'relay' ? Buffer.from(d.identityKey, 'base64') : undefined
      },
    }
  }

  private channelClosed (ch: Channel): void {
    const { x } = this
    const names = x.routes.close(ch)
    // shutting down: the records stay in the store for a replacement process (or expire)
    if (x.shuttingDown) return
    if (ch.initiator) return nextChannelClosed(x, ch, names)
    // the previous hop may come back on a new channel (its process replaced, a client
    // reattaching): circuits that have not moved to another channel by then are torn down
    x.clock.setTimeout(() => {
      for (const key of names) {
        if (x.routes.arrivesOn(key) !== ch) continue
        x.queue.run(key, async () => { if (x.routes.arrivesOn(key) === ch) await destroyFromPrev(x, key) }, (err) => x.reject('close', err))
      }
    }, x.init.reattachGraceMs ?? 3_000)
  }

  /**
   * Circuits leave the store without a DESTROY when they expire or are evicted; their
   * local routing entries (which channel they arrive on, which ids are used on an
   * outgoing channel) are dropped here, so long-lived channels do not accumulate them.
   */
  async sweep (): Promise<number> {
    const { x } = this
    if (this.sweeping) return 0
    this.sweeping = true
    let dropped = 0
    try {
      for (const key of x.routes.inbound()) {
        if (!(await x.sessions.get(key))) { x.routes.forget(key); dropped++ }
      }
      for (const ch of x.channels.initiated()) {
        for (const nextKey of [...x.routes.names(ch)]) {
          if (x.routes.pending.has(nextKey)) continue
          if (!(await x.sessions.get(nextKey))) { x.routes.release(ch, nextKey); dropped++ }
        }
      }
    } catch (err) {
      x.c.log.debug('sweep postponed', { code: isMarshmelloError(err) ? err.code : undefined }) // store unreachable: next time
    } finally {
      this.sweeping = false
    }
    return dropped
  }

  /** closes every channel (shutdown); circuit records stay in the store */
  closeAll (): void {
    const { x } = this
    x.shuttingDown = true
    this.sweepTimer.cancel()
    x.ephemerals.clear()
    x.channels.closeAll(CLOSE.NORMAL, 'relay shutting down')
    for (const p of x.routes.pending.values()) p.timer.cancel()
    x.routes.pending.clear()
  }
}
