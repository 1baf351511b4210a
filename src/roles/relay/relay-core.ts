// A relay's circuits (docs/PROTOCOL.md §5): the I/O shell around the pure middle hop
// (src/onion/circuits/middle-hop.ts). It owns the channels (channel-pool.ts), the
// local routing table (routing.ts), the session store and the timers, and wires
// cells to from-prev.ts and from-next.ts; it decides no protocol rule itself. Init
// (options) and components (store, consensus, clock, how channels open) are apart,
// libp2p style, so tests drive it over memory channels with a fake clock. The bounds of
// §5.5 are wired here: every channel's send queues count into the memory budget, a
// circuit over its send-queue cap ends, and a channel whose peer stalls is closed.
import { isMarshmelloError } from '../../errors.js'
import { CLOSE, type Channel, type ChannelAuthVerifier } from '../common/channel-types.js'
import type { Timer } from '../common/clock.js'
import { RelayChannelPool } from './channel-pool.js'
import { destroyFromPrev, fromPrev } from './from-prev.js'
import { fromNext, nextChannelClosed } from './from-next.js'
import type { RelayCounters } from './perform.js'
import { RelayContext, type RelayCoreComponents, type RelayCoreInit } from './relay-context.js'
import { endOnChannel, reclaim } from './memory-budget.js'

export type { RelayCounters, TraceEvent } from './perform.js'
export type { RelayCoreComponents, RelayCoreInit } from './relay-context.js'

export class RelayCore {
  private readonly x: RelayContext
  private readonly sweepTimer: Timer
  private readonly stallTimer: Timer
  /** channels with cells waiting: how many cells they had written when first seen stuck, and when */
  private readonly stuck = new Map<string, { written: number, since: number }>()
  private sweeping = false

  constructor (init: RelayCoreInit, components: RelayCoreComponents) {
    const { identity } = init
    const channels = new RelayChannelPool({
      // a relay proves its identity to the relays it extends to (§2.3); the server takes no AUTH
      open: (d) => components.openChannel(d, d.role === 'relay' ? { identityPrivate: identity.privateDer, fingerprint: identity.fingerprint, responderFingerprint: Buffer.from(d.fingerprint, 'hex') } : undefined),
      added: (ch) => {
        this.x.routes.open(ch)
        ch.account = { add: (d) => this.x.account(d) }
        ch.on('overflow', (circId) => endOnChannel(this.x, ch, circId, 'MM_ERR_CIRCUIT_QUEUE'))
        if (ch.initiator) ch.on('cell', (cell) => fromNext(this.x, ch, cell))
      },
      closed: (ch) => this.channelClosed(ch),
    })
    this.x = new RelayContext(init, components, channels)
    this.x.overBudget = () => reclaim(this.x)
    // a full table may hold circuits the store has expired: sweep early, at most every 5 s
    let sweptAt = -Infinity
    this.x.tableFull = () => {
      if (this.x.clock.now() - sweptAt < 5000) return
      sweptAt = this.x.clock.now()
      void this.sweep()
    }
    this.sweepTimer = this.x.clock.setInterval(() => { void this.sweep() }, init.sweepMs ?? 30_000)
    this.stallTimer = this.x.clock.setInterval(() => this.closeStalled(), Math.max(100, Math.min(this.x.opt.stallMs / 2, 5000)))
  }

  /** bytes of cells waiting in this relay's queues (what the memory budget bounds) */
  get queuedBytes (): number { return this.x.queuedBytes }

  /**
   * A peer that reads nothing while cells wait for it (§5.5): after stallMs its channel
   * closes, and the circuits on it end as after any channel loss.
   */
  private closeStalled (): void {
    const { x } = this
    const now = x.clock.now()
    for (const ch of x.channels.values()) {
      if (ch.pendingBytes === 0) { this.stuck.delete(ch.id); continue }
      const s = this.stuck.get(ch.id)
      if (!s || s.written !== ch.cellsWritten) { this.stuck.set(ch.id, { written: ch.cellsWritten, since: now }); continue }
      if (now - s.since < x.opt.stallMs) continue
      this.stuck.delete(ch.id)
      x.refused('MM_ERR_PEER_STALLED')
      ch.close(CLOSE.OVERLOAD, `MM_ERR_PEER_STALLED: the peer read nothing for ${x.opt.stallMs} ms`)
    }
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
    this.stuck.delete(ch.id)
    x.waitingFrom.delete(ch.id)
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
    this.stallTimer.cancel()
    x.ephemerals.clear()
    x.channels.closeAll(CLOSE.NORMAL, 'relay shutting down')
    for (const p of x.routes.pending.values()) p.timer.cancel()
    x.routes.pending.clear()
  }
}
