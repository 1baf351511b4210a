// A live network for one client test file (test/helpers/network.ts: a server and N
// relays as real processes, relay i on 127.0.0.1(1+i)), started before the file's
// tests, with every client opened on it closed after them. Clients connect with
// `--devnet DIR` (or in-process through openClient, as here).
import type { Test } from 'tap'
import type { ChatClient } from '../../../src/roles/client/chat-client.js'
import { openClient } from '../../../src/roles/client/setup.js'
import type { Clock } from '../../../src/roles/common/clock.js'
import { startNetwork, type Network } from '../../helpers/network.js'

export interface LiveNetwork {
  /** the network (started before the file's first test) */
  net: () => Network
  /** a client on it with its profile in `home`, keeping time with `clock`; closed with the network at the end of the file */
  client: (home: string, rotate?: number, clock?: Clock) => Promise<ChatClient>
}

/** For one test file: a live network started before its tests, and every client opened on it closed after them. */
export function liveNetwork (t: Test, opts: { relays?: number } = {}): LiveNetwork {
  let net: Network | undefined
  const clients: ChatClient[] = []
  t.before(async () => { net = await startNetwork({ relays: opts.relays ?? 3, serverArgs: ['--relay-stale', '30'] }) })
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
