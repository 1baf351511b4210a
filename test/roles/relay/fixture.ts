// Shared set-up for the relay tests: one loopback network per test file, started by
// the devnet's own code without a server (test/helpers/network.ts, mode `file`:
// relay processes from the CLI reading a consensus file the devnet signs, around an
// in-process final hop that records what it rejects), plus small probes (/metrics with
// the operator token, /healthz, polling) and raw cell helpers for tests that speak the
// channel protocol themselves.
import type { ChildProcess } from 'node:child_process'
import type { Test } from 'tap'
import { connectChannel, type Channel } from '../../../src/roles/common/channel.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { ChannelCommand, encodeChannelCell, type ChannelCell } from '../../../src/onion/cells/channel-cell.js'
import { clientStart } from '../../../src/onion/handshake/oaep-x25519.js'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'
import { httpsGetJson, startEchoHop, type EchoHop, type Proc } from '../../helpers/net.js'
import { startNetwork, type NetRelay, type Network } from '../../helpers/network.js'

export { sleep, waitUntil } from '../../helpers/wait.js'

export interface NetRelayProc extends NetRelay { child: ChildProcess, kill: Proc['kill'] }

export interface Net {
  dir: string
  /** the pinned directory key's fingerprint (the devnet's own signing key) */
  directoryKey: string
  /** the consensus file every relay reads (an extra relay started on it sees what publish() writes) */
  consensus: string
  relays: NetRelayProc[]
  descs: Descriptor[]
  final: EchoHop
  network: Network
  /** signs and writes a consensus, then waits until the relays have re-read it */
  publish: (relays: Descriptor[], server?: Descriptor | null) => Promise<void>
  /** starts relay i (0-based) again after it exited: same data dir, address and flags; once it serves a consensus listing it */
  restart: (i: number) => Promise<NetRelayProc>
}

/** relay processes on `hosts` (with per-relay extra CLI args), a final hop, and a consensus listing them all */
export async function startNet (t: Test, hosts: string[], o: { extra?: (i: number) => string[], finalHost?: string, trace?: (i: number) => string, nodeArgs?: string[] } = {}): Promise<Net> {
  const final = await startEchoHop(o.finalHost ?? '127.0.0.20')
  t.teardown(final.close)
  const network = await startNetwork({
    mode: 'file',
    finalHop: { descriptor: final.descriptor },
    relays: hosts.length,
    relayHosts: hosts,
    relayArgs: (i) => [...(o.trace ? ['--trace', o.trace(i - 1)] : []), ...(o.extra?.(i - 1) ?? [])],
    nodeArgs: o.nodeArgs,
  })
  t.teardown(network.stop)
  return {
    dir: network.dir,
    directoryKey: network.directoryKey,
    consensus: network.info.consensusFile!,
    relays: network.relays.map((r) => ({ ...r, child: r.proc.child, kill: r.proc.kill })),
    descs: network.descriptors,
    final,
    network,
    publish: network.publish,
    restart: async (i) => {
      const r = await network.restartRelay(`relay${i + 1}`)
      return { ...r, child: r.proc.child, kill: r.proc.kill }
    },
  }
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
