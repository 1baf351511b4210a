// Case 3: delivery latency. B holds a long-poll (GET …?after=ID&wait=25) on its own
// circuit; once it is pending at the server, A sends on another circuit; the figure
// is the time from the start of A's send to B's long-poll returning with it.
// Runs in its own room so no other traffic wakes B. A's own send (its round trip,
// taken after the same idle wait) is recorded beside it: on this VM a round trip after
// ~15 ms of idleness is far slower than back to back, and delivery includes that wait.
import { LinkPool } from '../../src/roles/client/circuit.js'
import { buildCircuit, circuitClient, loginAs, sendBody } from '../lib/api.js'
import { fullPath, type BenchNetwork } from '../lib/network.js'
import { nowMs, percentiles, sleep, type Percentiles } from '../lib/stats.js'

const ROOM = 'bench-delivery'

export interface DeliveryResult extends Percentiles {
  /** A's send in the same samples: a round trip after the same idle wait */
  senderRoundTrip: Percentiles
}

export async function benchDelivery (net: BenchNetwork, samples: number): Promise<DeliveryResult> {
  const linksA = new LinkPool('127.0.0.77')
  const linksB = new LinkPool('127.0.0.78')
  try {
    const a = circuitClient(await buildCircuit(fullPath(net), linksA))
    const b = circuitClient(await buildCircuit(fullPath(net), linksB))
    const ta = await loginAs(a, 'deliver-a')
    const tb = await loginAs(b, 'deliver-b')
    const first = await a.call('POST', `/v1/rooms/${ROOM}/messages`, sendBody('d0'), ta)
    let after: string = first.json.message.id
    const out: number[] = []
    const sends: number[] = []
    for (let i = 0; i < samples + 5; i++) {
      const poll = b.call('GET', `/v1/rooms/${ROOM}/messages?after=${after}&wait=25`, undefined, tb)
      await sleep(15) // the GET is parked at the server by now (a round trip is a few ms)
      const t = nowMs()
      const sent = await a.call('POST', `/v1/rooms/${ROOM}/messages`, sendBody('d'), ta)
      const sendMs = nowMs() - t
      const got = await poll
      const dt = nowMs() - t
      if (got.status !== 200 || !got.json.messages?.some((m: { id: string }) => m.id === sent.json.message.id)) {
        throw new Error(`delivery: long-poll returned ${got.status} without the message sent`)
      }
      after = got.json.messages[got.json.messages.length - 1].id
      if (i >= 5) { out.push(dt); sends.push(sendMs) } // the first few warm the path
    }
    await a.close()
    await b.close()
    return { ...percentiles(out), senderRoundTrip: percentiles(sends) }
  } finally {
    await linksA.close()
    await linksB.close()
  }
}
