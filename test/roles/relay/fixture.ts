// Shared set-up for the relay tests: one loopback network per test file (relay
// processes from the CLI, a signed consensus file, an in-process final hop that
// records what it rejects), plus small probes (/metrics with the operator token,
// /healthz, polling) and
// raw cell helpers for tests that speak the channel protocol themselves.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { connectChannel, type Channel } from '../../../src/roles/common/channel.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { waitUntil } from '../../helpers/wait.js'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'
import { directoryKey, httpsGetJson, startEchoHop, startRelayProc, tmp, writeConsensus, type DirectoryKey, type EchoHop, type RelayProc } from '../../helpers/net.js'

export { sleep, waitUntil } from '../../helpers/wait.js'

export interface Net {
  dir: string
  key: DirectoryKey
  consensus: string
  relays: RelayProc[]
  descs: Descriptor[]
  final: EchoHop
  /** signs and writes a consensus, then waits until the relays have re-read it */
  publish: (relays: Descriptor[], server?: Descriptor | null) => Promise<void>
}

/** relay processes on `hosts` (with per-relay extra CLI args), a final hop, and a consensus listing them all */
export async function startNet (t: Test, hosts: string[], o: { extra?: (i: number) => string[], finalHost?: string } = {}): Promise<Net> {
  const dir = tmp()
  const key = directoryKey()
  const consensus = join(dir, 'consensus.json')
  const relays: RelayProc[] = []
  t.teardown(() => Promise.all(relays.map((r) => r.kill())))
  await Promise.all(hosts.map(async (host, i) => {
    relays[i] = await startRelayProc({ host, consensus, dirKey: key.fingerprint, extra: o.extra?.(i) })
  }))
  const final = await startEchoHop(o.finalHost ?? '127.0.0.20')
  t.teardown(final.close)
  const descs = await Promise.all(relays.map((r) => r.descriptor()))
  const publish = async (list: Descriptor[], server: Descriptor | null = final.descriptor): Promise<void> => {
    writeConsensus(consensus, key, list, server)
    // relays re-read the file every second: wait until each serves this very document
    const signature = (JSON.parse(readFileSync(consensus, 'utf8')) as { signature: string }).signature
    const serving = async (r: RelayProc) => ((await httpsGetJson(`https://${r.host}:${r.port}/consensus`).catch(() => null)) as { signature?: string } | null)?.signature === signature
    if (!await waitUntil(async () => (await Promise.all(relays.map(serving))).every(Boolean), { timeoutMs: 10_000, everyMs: 50 })) throw new Error('the relays did not take up the new consensus within 10 s')
  }
  await publish(descs)
  return { dir, key, consensus, relays, descs, final, publish }
}

/** a relay's exact counters, through the operator path (the token in its data dir, PROTOCOL §8) */
export async function metrics (r: { host: string, port: number, dataDir: string }): Promise<Record<string, number>> {
  const m = await fetchOperatorJson(`https://${r.host}:${r.port}/metrics`, readOperatorCredentials(r.dataDir))
  if (m === null) throw new Error(`no /metrics from ${r.host}:${r.port}`)
  return m as Record<string, number>
}

export const healthz = async (r: { host: string, port: number }): Promise<Record<string, any>> =>
  await httpsGetJson(`https://${r.host}:${r.port}/healthz`) as Record<string, any>

/** a raw cell channel to a relay from `localAddress`, with every cell it receives recorded */
export async function rawChannel (t: Test, d: Descriptor, localAddress: string): Promise<{ ch: Channel, cells: ChannelCell[] }> {
  const ch = await connectChannel({ host: d.host, port: d.port, tlsCert: d.tlsCert, tlsFingerprint: d.tlsFingerprint, localAddress })
  t.teardown(() => ch.close(1000, 'test done'))
  const cells: ChannelCell[] = []
  ch.on('cell', (c) => cells.push(c))
  return { ch, cells }
}

/** a real CREATE cell (clientStart against the hop's listed identity key) */
export function createCell (d: Descriptor, circId: number): Buffer {
  return encodeChannelCell(circId, ChannelCommand.CREATE, clientStart({ identityKey: Buffer.from(d.identityKey, 'base64') }).create)
}
