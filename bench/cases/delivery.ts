// Case 3: delivery latency. B holds a long-poll (GET …?after=ID&wait=25) on its own
// circuit; A then sends on another circuit; the figure is the time from the start of
// A's send to B's long-poll returning with it. Runs in its own room so no other
// traffic wakes B.
//
// How long to wait between B's GET and A's send. The GET needs about half a round trip
// (~1 ms) to be parked at the server. The target figure waits PARKED_MS (3 ms). Should a
// GET not be parked yet when A's message is stored, its first read finds the message and
// it returns at once, later than a parked one would have: a short wait can only make
// delivery look slower, never faster. The same samples also run after IDLE_MS (15 ms):
// on this kind of VM any request after ~15 ms of idleness is 2–3 × slower than back to
// back, onion or not; A's own send in each series is recorded beside it so that effect is
// visible apart from the push path. The two series alternate, so they see the same noise.
import { ChannelPool } from '../../src/roles/client/circuits/channel-pool.js'
import { buildCircuit, circuitClient, loginAs, sendBody } from '../lib/api.js'
import { fullPath, type BenchNetwork } from '../lib/network.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { nowMs, percentiles, type Percentiles } from '../lib/stats.js'

const ROOM = 'bench-delivery'
export const PARKED_MS = 3
export const IDLE_MS = 15

export interface DeliveryResult extends Percentiles {
  /** how long B's GET had before A sent (this series: the target figure) */
  waitMs: number
  /** A's send in the same samples */
  senderRoundTrip: Percentiles
  /** the same measure with IDLE_MS between B's GET and A's send */
  afterIdle: Percentiles & { waitMs: number, senderRoundTrip: Percentiles }
}

export async function benchDelivery (net: BenchNetwork, samples: number): Promise<DeliveryResult> {
  const linksA = new ChannelPool('127.0.0.77')
  const linksB = new ChannelPool('127.0.0.78')
  try {
    const a = circuitClient(await buildCircuit(fullPath(net), linksA))
    const b = circuitClient(await buildCircuit(fullPath(net), linksB))
    const ta = await loginAs(a, 'deliver-a')
    const tb = await loginAs(b, 'deliver-b')
    const first = await a.call('POST', `/v1/rooms/${ROOM}/messages`, sendBody('d0'), ta)
    let after: string = first.json.message.id
    const series = {
      [PARKED_MS]: { deliveries: [] as number[], sends: [] as number[] },
      [IDLE_MS]: { deliveries: [] as number[], sends: [] as number[] },
    }
    const warmUp = 10
    for (let i = 0; i < 2 * samples + warmUp; i++) {
      const waitMs = i % 2 === 0 ? PARKED_MS : IDLE_MS
      const poll = b.call('GET', `/v1/rooms/${ROOM}/messages?after=${after}&wait=25`, undefined, tb)
      await sleep(waitMs)
      const t = nowMs()
      const sent = await a.call('POST', `/v1/rooms/${ROOM}/messages`, sendBody('d'), ta)
      const sendMs = nowMs() - t
      const got = await poll
      const dt = nowMs() - t
      if (got.status !== 200 || !got.json.messages?.some((m: { id: string }) => m.id === sent.json.message.id)) {
        throw new Error(`delivery: long-poll returned ${got.status} without the message sent`)
      }
      after = got.json.messages[got.json.messages.length - 1].id
      if (i >= warmUp) { series[waitMs].deliveries.push(dt); series[waitMs].sends.push(sendMs) }
    }
    await a.close()
    await b.close()
    const parked = series[PARKED_MS]
    const idle = series[IDLE_MS]
    return {
      ...percentiles(parked.deliveries),
      waitMs: PARKED_MS,
      senderRoundTrip: percentiles(parked.sends),
      afterIdle: { ...percentiles(idle.deliveries), waitMs: IDLE_MS, senderRoundTrip: percentiles(idle.sends) },
    }
  } finally {
    await linksA.close()
    await linksB.close()
  }
}
