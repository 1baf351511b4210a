// The client tests' view of a live network (server + N relays as real processes,
// relay i on 127.0.0.1(0+i)), started by test/helpers/network.ts: adds the parsed
// consensus and the shape these tests use. Clients connect with `--devnet DIR`.
import { verifyConsensus, type Consensus } from '../../../src/onion/directory/consensus.js'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import type { Test } from 'tap'
import type { ChatClient } from '../../../src/roles/client/chat-client.js'
import { openClient } from '../../../src/roles/client/setup.js'
import type { Clock } from '../../../src/roles/common/clock.js'
import type { Proc } from '../../helpers/net.js'
import { startNetwork } from '../../helpers/network.js'

export interface TestRelay { proc: Proc, nickname: string, host: string, port: number, fingerprint: string, url: string }

export interface TestNetwork {
  dir: string
  directoryKey: string
  server: Proc
  serverUrl: string
  relays: TestRelay[]
  consensus: () => Promise<Consensus>
  stop: () => Promise<void>
}

/** `relayArgs(i)` gives extra flags for relay i (1-based) */
export async function startTestNetwork (opts: { relays?: number, relayArgs?: (i: number) => string[] } = {}): Promise<TestNetwork> {
  const relayArgs = opts.relayArgs
  const net = await startNetwork({ relays: opts.relays ?? 3, serverArgs: ['--relay-stale', '30'], relayArgs: relayArgs ? (i) => relayArgs(i + 1) : undefined })
  const directoryKey = net.server.directoryKey
  const consensus = async () => {
    const res = await fetchDocument(`${net.server.url}/v1/directory/consensus`)
    if (res.status !== 200) throw new Error(`consensus: HTTP ${res.status}`)
    return verifyConsensus(JSON.parse(res.text), directoryKey, Date.now())
  }
  return {
    dir: net.dir,
    directoryKey,
    server: net.server.proc,
    serverUrl: net.server.url,
    relays: net.relays.map((r) => ({ proc: r.proc, nickname: r.nickname, host: r.host, port: r.port, fingerprint: r.fingerprint, url: r.url })),
    consensus,
    stop: net.stop,
  }
}

export interface LiveNetwork {
  /** the network (started before the file's first test) */
  net: () => TestNetwork
  /** a client on it with its profile in `home`, keeping time with `clock`; closed with the network at the end of the file */
  client: (home: string, rotate?: number, clock?: Clock) => Promise<ChatClient>
}

/** For one test file: a live network started before its tests, and every client opened on it closed after them. */
export function liveNetwork (t: Test, opts: { relays?: number } = {}): LiveNetwork {
  let net: TestNetwork | undefined
  const clients: ChatClient[] = []
  t.before(async () => { net = await startTestNetwork({ relays: opts.relays ?? 3 }) })
  t.teardown(async () => {
    for (const c of clients) await c.circuits.close().catch(() => {})
    await net?.stop()
  })
  const started = () => {
    if (!net) throw new Error('the network starts before the first test')
    return net
  }
  return {
    net: started,
    async client (home, rotate = 600, clock) {
      const c = await openClient({ home, devnet: started().dir, rotate, verbose: false }, { clock })
      clients.push(c)
      return c
    },
  }
}
