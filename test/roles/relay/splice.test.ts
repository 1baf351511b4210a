// The splicing attack (issue 14, P6), in-process over memory channels with the real
// relays, final hop and client circuit: a link between two hops that holds back, drops,
// duplicates or reorders the RELAY cells of one multi-cell request (forward) or of its
// multi-cell response (backward). The request A×1949 B×2009 C×2009 D×100 must
// never reach the final hop's handler altered, and no altered response may reach the
// client: the next honest hop (a relay or the final hop) destroys the circuit with
// INTEGRITY, or the client refuses the backward cell, and the client's request fails
// with MM_ERR_CIRCUIT_INTEGRITY. A bystander circuit on the same relays and channels keeps
// working, and so does a circuit built after the attack. Last, the bytes each hop receives
// for one cell share nothing with what a hop that is not its neighbour receives.
import t, { type Test } from 'tap'
import { ChannelCommand } from '../../../src/onion/cells/channel-cell.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import type { ApiRequest } from '../../../src/onion/streams/envelope.js'
import type { Channel } from '../../../src/roles/common/channel.js'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { settle, until } from '../../helpers/fake-clock.js'
import type { MemoryTransport } from '../../helpers/memory-channel.js'
import { inProcessNet, type InProcessNet } from './harness.js'

const BODY = Buffer.concat([Buffer.alloc(1949, 'A'), Buffer.alloc(2009, 'B'), Buffer.alloc(2009, 'C'), Buffer.alloc(100, 'D')])
const REQUEST: ApiRequest = { method: 'POST', path: '/v1/rooms/lobby/messages', headers: { 'content-type': 'application/octet-stream' }, body: BODY }

/**
 * A link that misbehaves on command: the next `take` RELAY frames from side `from` are
 * held, then delivered in `order` (an index twice is a duplicate, a missing one a drop).
 */
class HostileLink {
  private plan: { from: 'a' | 'b', take: number, order: number[] } | null = null
  private held: Array<() => void> = []
  /** RELAY frames this link carried from each side */
  readonly relayed = { a: 0, b: 0 }
  /** the RELAY frames themselves, while recording */
  recording: { a: Buffer[], b: Buffer[] } | null = null

  readonly transport: MemoryTransport = (f, deliver) => {
    if (f.kind === 'frame' && f.data[4] === ChannelCommand.RELAY) {
      this.relayed[f.from]++
      this.recording?.[f.from].push(Buffer.from(f.data))
      const p = this.plan
      if (p && f.from === p.from) {
        this.held.push(deliver)
        if (this.held.length === p.take) {
          const held = this.held
          this.held = []
          this.plan = null
          for (const i of p.order) setImmediate(held[i])
        }
        return
      }
    }
    setImmediate(deliver)
  }

  arm (from: 'a' | 'b', take: number, order: number[]): void { this.plan = { from, take, order } }
  get armed (): boolean { return this.plan !== null }
}

interface Setup { net: InProcessNet, path: Descriptor[], channels: Map<string, HostileLink>, pool: ChannelPool }

/** three relays and the final hop; every channel runs over a HostileLink named `<from host>→<to host>` */
function setup (t: Test): Setup {
  const net = inProcessNet(t, ['127.0.0.11', '127.0.0.12', '127.0.0.13'])
  const channels = new Map<string, HostileLink>()
  const open = net.open.bind(net)
  net.open = (target, o = {}) => {
    const link = new HostileLink()
    channels.set(`${o.from ?? '127.0.0.77'}→${target.host}`, link)
    return open(target, { ...o, transport: link.transport })
  }
  const pool = new ChannelPool(undefined, async (d) => net.open(d, { from: '127.0.0.77' }) as unknown as Channel)
  return { net, path: [...net.relays.map((r) => r.d), net.final.d], channels, pool }
}

const build = (s: Setup) => Circuit.build({ path: s.path, channels: s.pool, clock: s.net.clock, timeoutMs: 10_000 })

async function echo (t: Test, c: Circuit, text: string): Promise<void> {
  const res = await c.request({ method: 'POST', path: '/echo', headers: {}, body: Buffer.from(text) })
  t.equal(res.body.toString(), text, `honest traffic flows (${text})`)
}

/** the requests the final hop's handler received with the path, and whether each is exactly what was sent */
const spliced = (net: InProcessNet) => net.final.requests.filter((r) => r.path === REQUEST.path).map((r) => r.body.equals(BODY))

const ATTACKS: Record<string, number[]> = {
  'reorders two cells': [0, 2, 1, 3],
  'holds one cell back until the others passed': [0, 2, 3, 1],
  'drops a cell': [0, 1, 3],
  'duplicates a cell': [0, 1, 1, 2, 3],
}

for (const [link, detectedBy] of [['127.0.0.11→127.0.0.12', 'relay 2'], ['127.0.0.13→127.0.0.20', 'the final hop']] as const) {
  for (const [name, order] of Object.entries(ATTACKS)) {
    t.test(`forward, the link ${link} ${name}: ${detectedBy} destroys the circuit, the handler never sees an altered request`, async (t) => {
      const s = setup(t)
      const victim = await build(s)
      const bystander = await build(s)
      await echo(t, victim, 'victim before')
      const hostile = s.channels.get(link)!
      t.ok(hostile, 'the link exists')
      const handled = s.net.final.requests.length
      hostile.arm('a', 4, order)
      const failure = victim.request(REQUEST).then(() => null, (err) => err)
      const err = await failure
      t.notOk(hostile.armed, 'the attack ran on the request\'s 4 cells')
      t.match(err, { code: 'MM_ERR_CIRCUIT_INTEGRITY' }, 'the client sees the circuit destroyed for integrity')
      t.ok(victim.closed, 'the victim circuit is closed')
      await settle()
      t.same(spliced(s.net), [], 'no request with the spliced path reached the handler, altered or not')
      t.equal(s.net.final.requests.length, handled, 'the handler received nothing')
      if (detectedBy === 'the final hop') t.ok(s.net.final.rejected.includes('MM_ERR_LAYER_AUTH'), 'the final hop refused the cell')
      else t.ok(s.net.relays[1].core.counters.cellsRejected > 0, 'relay 2 refused the cell')
      await echo(t, bystander, 'bystander after')
      await echo(t, await build(s), 'a new circuit after')
    })
  }
}

for (const [name, order] of Object.entries(ATTACKS)) {
  t.test(`backward, the link 127.0.0.11←127.0.0.12 ${name}: the client refuses the response, never takes it altered`, async (t) => {
    const s = setup(t)
    const victim = await build(s)
    const bystander = await build(s)
    await echo(t, victim, 'victim before')
    const hostile = s.channels.get('127.0.0.11→127.0.0.12')!
    // the echo's response (the request's body and a few headers) is 4 backward cells
    hostile.arm('b', 4, order)
    const err = await victim.request(REQUEST).then(() => null, (e) => e)
    t.notOk(hostile.armed, 'the attack ran on the response\'s 4 cells')
    t.match(err, { code: 'MM_ERR_CIRCUIT_INTEGRITY' }, 'the request fails: no response, altered or not')
    t.same(spliced(s.net), [true], 'the request itself reached the handler intact')
    t.ok(victim.closed)
    await echo(t, bystander, 'bystander after')
    await echo(t, await build(s), 'a new circuit after')
  })
}

t.test('without an attack the same request and response pass through every link intact', async (t) => {
  const s = setup(t)
  const c = await build(s)
  const res = await c.request(REQUEST)
  t.same(res.body, BODY, 'the response is the request\'s body byte for byte')
  t.same(spliced(s.net), [true])
  const l = s.channels.get('127.0.0.11→127.0.0.12')!
  t.ok(await until(() => l.relayed.a >= 4 && l.relayed.b >= 4), '4 cells each way on the middle link (plus the build)')
})

t.test('for one cell, hops that are not neighbours receive nothing in common (no counter, no nonce)', async (t) => {
  const s = setup(t)
  const c = await build(s)
  await echo(t, c, 'warm up')
  const names = ['127.0.0.77→127.0.0.11', '127.0.0.11→127.0.0.12', '127.0.0.12→127.0.0.13', '127.0.0.13→127.0.0.20']
  const channels = names.map((n) => s.channels.get(n)!)
  t.ok(channels.every(Boolean), 'one link per hop: client→R1→R2→R3→S')
  for (const l of channels) l.recording = { a: [], b: [] }
  await echo(t, c, 'one cell each way')
  for (const l of channels) { t.same([l.recording!.a.length, l.recording!.b.length], [1, 1], 'one cell forward and one back on every link') }
  const windows = (b: Buffer): Set<string> => {
    const out = new Set<string>()
    for (let o = 0; o + 8 <= b.length; o++) out.add(b.toString('latin1', o, o + 8))
    return out
  }
  const common = (x: Buffer, y: Buffer): number => { const w = windows(x); let n = 0; for (const v of windows(y)) if (w.has(v)) n++; return n }
  // link i is what hop i+1 receives forward (R1, R2, R3, S) and what hop i sends back
  for (const [i, j] of [[0, 2], [0, 3], [1, 3]]) {
    const fwd = common(channels[i].recording!.a[0], channels[j].recording!.a[0])
    const back = common(channels[i].recording!.b[0], channels[j].recording!.b[0])
    t.same([fwd, back], [0, 0], `hop ${i + 1} and hop ${j + 1}: no 8 bytes in common, either way`)
  }
})
