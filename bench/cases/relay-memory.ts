// Case 5: relay memory per idle circuit. A fresh relay process receives CREATE
// cells over one channel (a bounded window in flight, each answered CREATED) until
// it holds N one-hop circuits; its VmRSS is read at several points. Figures are
// (RSS(n) - RSS(0)) / n, and the slope between the last two points.
import { join } from 'node:path'
import { clientStart } from '../../src/onion/handshake/oaep-x25519.js'
import { ChannelCommand, encodeChannelCell } from '../../src/onion/cells/channel-cell.js'
import { connectChannel } from '../../src/roles/common/channel.js'
import { fetchDocument } from '../../src/roles/common/signed-fetch.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { relayMetrics, type BenchNetwork } from '../lib/network.js'
import { rssBytes, start } from '../lib/procs.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { nowMs, round } from '../lib/stats.js'

export interface MemoryPoint { circuits: number, rssBytes: number, bytesPerCircuit: number }
export interface MemoryResult { points: MemoryPoint[], bytesPerCircuit: number, slopeBytesPerCircuit: number, createsPerSec: number, note?: string }

// CREATEs in flight
const WINDOW = 64

export async function benchRelayMemory (net: BenchNetwork, total: number, nodeArgs: string[] = []): Promise<MemoryResult> {
  const relay = start('relay-mem', ['relay', '--port', '0', '--host', '127.0.0.14', '--data-dir', join(net.dir, 'rmem'),
    '--directory', net.serverUrl, '--directory-key', net.directoryKey, '--nickname', 'relaymem',
    '--create-rate', '1000000', '--create-burst', '1000000', '--max-circuits', String(Math.max(total * 2, 1000))], nodeArgs)
  try {
    const url = (await relay.waitFor(/listening on (https:\/\/[\d.]+:\d+)/))[1]
    const d = JSON.parse((await fetchDocument(url + '/descriptor')).text) as Descriptor
    const ch = await connectChannel({ host: d.host, port: d.port, tlsCert: d.tlsCert, tlsFingerprint: d.tlsFingerprint, localAddress: '127.0.0.79' })
    const identityKey = Buffer.from(d.identityKey, 'base64')
    await sleep(1000)
    const points: MemoryPoint[] = []
    const base = rssBytes(relay.pid)
    points.push({ circuits: 0, rssBytes: base, bytesPerCircuit: 0 })
    const marks = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1].map((f) => Math.round(total * f)).filter((n, i, a) => n > 0 && a.indexOf(n) === i)
    let sent = 0
    let answered = 0
    let refused = 0
    let wake: (() => void) | null = null
    ch.on('cell', (cell) => {
      if (cell.cmd === ChannelCommand.CREATED) answered++
      else refused++
      wake?.()
    })
    const t0 = nowMs()
    let note: string | undefined
    for (const mark of marks) {
      if (note) break
      let progressAt = nowMs()
      let seen = answered + refused
      while (answered + refused < mark) {
        if (ch.closed) throw new Error('relay-memory: channel closed')
        if (answered + refused > seen) { seen = answered + refused; progressAt = nowMs() }
        if (nowMs() - progressAt > 30_000) { note = `stalled: no CREATED for 30 s at ${answered} circuits (${sent - answered - refused} unanswered)`; break }
        while (sent < mark && sent - (answered + refused) < WINDOW) ch.send(encodeChannelCell(++sent, ChannelCommand.CREATE, clientStart({ identityKey }).create))
        await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 50) })
        wake = null
      }
      if (note) break
      await sleep(300)
      const rss = rssBytes(relay.pid)
      points.push({ circuits: answered, rssBytes: rss, bytesPerCircuit: Math.round((rss - base) / answered) })
    }
    const createsPerSec = Math.round(answered / ((nowMs() - t0) / 1000))
    if (refused > 0) throw new Error(`relay-memory: ${refused} CREATE refused`)
    const m = await relayMetrics(url, join(net.dir, 'rmem'))
    if (m.circuits < answered) throw new Error(`relay-memory: relay reports ${m.circuits} circuits, expected ${answered}`)
    const last = points[points.length - 1]
    const prev = points[points.length - 2]
    ch.close(1000, 'done')
    return {
      points,
      bytesPerCircuit: last.bytesPerCircuit,
      slopeBytesPerCircuit: round((last.rssBytes - prev.rssBytes) / Math.max(1, last.circuits - prev.circuits), 0),
      createsPerSec,
      note,
    }
  } finally {
    await relay.stop()
  }
}
