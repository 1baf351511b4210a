// Case: direct messages through the onion, beside room sends by the same clients (issue 16's
// benchmark). Every client is the real ChatClient (src/roles/client/chat-client.ts) on the
// bench's devnet, with its profile on disk, so a DM send is all of what a user's send is:
// the ratchet step and its persisted state, the sealed envelope padded to its bucket, the
// POST /v1/dms/sealed with a delivery token on the anonymous circuit, and the local log;
// a room send is ChatClient.sendRoom on the signed-in circuit. Receiving is readDms
// finding one new DM: the GET, opening the envelope and its certificate, the ratchet step,
// the persisted log and the acknowledgement that deletes it at the server.
//
// Latency: one pair (a → b), DM and room samples alternating in blocks so drift affects both
// alike. Throughput: `clients` clients in pairs, each sending DMs to its partner back to back
// for `seconds`, then the same clients sending room messages for as long. Clients run in
// this one process, as in the throughput case, so its CPU share is the clients' work.
import { join } from 'node:path'
import { openClient } from '../../src/roles/client/setup.js'
import type { ChatClient } from '../../src/roles/client/chat-client.js'
import type { BenchNetwork } from '../lib/network.js'
import { tmp } from '../lib/procs.js'
import { nowMs, percentiles, round, type Percentiles } from '../lib/stats.js'

const TEXT = 'x'.repeat(200)
const PASSWORD = 'bench-password-123'
const ROOM = 'bench-dm-room'

export interface DmLevel { clients: number, seconds: number, dmsPerSec: number, roomSendsPerSec: number, dmLatency: Percentiles, roomLatency: Percentiles, errors: number }

export interface DmResult {
  /** ChatClient.sendDm, a → b (a session already running) */
  send: Percentiles
  /** ChatClient.sendRoom by the same client, in the same blocks */
  roomSend: Percentiles
  /** ChatClient.readDms returning one new DM */
  receive: Percentiles
  /** DM send p50 / room send p50 */
  ratioP50: number
  throughput: DmLevel[]
}

async function client (net: BenchNetwork, name: string): Promise<ChatClient> {
  const c = await openClient({ home: join(tmp('mm-bench-dm-'), name), devnet: net.dir, rotate: 3600, verbose: false })
  await c.register(name, PASSWORD)
  await c.login(name, PASSWORD)
  return c
}

export async function benchDm (net: BenchNetwork, o: { samples: number, levels: number[], seconds: number }): Promise<DmResult> {
  const open: ChatClient[] = []
  const make = async (name: string) => { const c = await client(net, name); open.push(c); return c }
  try {
    const a = await make('dm-bench-a')
    const b = await make('dm-bench-b')
    // the session (PQXDH, then both ratchets moving) and the circuits warm, outside the samples
    for (let i = 0; i < 5; i++) {
      await a.sendDm('dm-bench-b', TEXT)
      await b.readDms()
      await b.sendDm('dm-bench-a', TEXT)
      await a.readDms()
      await a.sendRoom(ROOM, TEXT)
    }
    const dm: number[] = []
    const room: number[] = []
    const receive: number[] = []
    const block = 10
    for (let done = 0; done < o.samples; done += block) {
      const n = Math.min(block, o.samples - done)
      for (let i = 0; i < n; i++) {
        let t = nowMs()
        await a.sendDm('dm-bench-b', TEXT)
        dm.push(nowMs() - t)
        t = nowMs()
        const page = await b.readDms()
        receive.push(nowMs() - t)
        if (!page.messages.some((m) => m.from === 'dm-bench-a' && m.verified)) throw new Error('bench: the DM did not open at its recipient')
      }
      for (let i = 0; i < n; i++) { const t = nowMs(); await a.sendRoom(ROOM, TEXT); room.push(nowMs() - t) }
    }
    const send = percentiles(dm)
    const roomSend = percentiles(room)
    const throughput: DmLevel[] = []
    for (const clients of o.levels) throughput.push(await level(make, clients, o.seconds))
    return { send, roomSend, receive: percentiles(receive), ratioP50: round(send.p50 / roomSend.p50, 2), throughput }
  } finally {
    for (const c of open) await c.circuits.close().catch(() => {})
  }
}

async function level (make: (name: string) => Promise<ChatClient>, clients: number, seconds: number): Promise<DmLevel> {
  const pairs = Math.max(1, Math.floor(clients / 2))
  const cs: ChatClient[] = []
  for (let i = 0; i < 2 * pairs; i++) cs.push(await make(`dm-tp${clients}-${i}`))
  const peerOf = (i: number) => `dm-tp${clients}-${i ^ 1}`
  // each pair's session starts before the clock does
  for (let i = 0; i < cs.length; i += 2) {
    await cs[i].sendDm(peerOf(i), TEXT)
    await cs[i + 1].readDms()
    await cs[i + 1].sendDm(peerOf(i + 1), TEXT)
    await cs[i].readDms()
  }
  let errors = 0
  const run = async (one: (c: ChatClient, i: number) => Promise<unknown>): Promise<{ perSec: number, latency: Percentiles }> => {
    const lat: number[] = []
    const t0 = nowMs()
    const end = t0 + seconds * 1000
    await Promise.all(cs.map(async (c, i) => {
      while (nowMs() < end) {
        const t = nowMs()
        try { await one(c, i); lat.push(nowMs() - t) } catch { errors++ }
      }
    }))
    return { perSec: Math.round(lat.length / ((nowMs() - t0) / 1000)), latency: percentiles(lat) }
  }
  const dms = await run((c, i) => c.sendDm(peerOf(i), TEXT))
  const rooms = await run((c) => c.sendRoom(ROOM, TEXT))
  return { clients: cs.length, seconds, dmsPerSec: dms.perSec, roomSendsPerSec: rooms.perSec, dmLatency: dms.latency, roomLatency: rooms.latency, errors }
}
