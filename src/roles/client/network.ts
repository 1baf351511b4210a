// How a client finds the network (docs/PROTOCOL.md §7): from a devnet's devnet.json or
// a bootstrap relay URL plus the pinned directory authority keys (and threshold); fetches the signed consensus
// from a relay (never from the server, P1) and chooses paths: the entry the guard
// module picked (circuits/guards.ts), then middle and exit relays drawn uniformly
// (no bandwidth weights: the consensus carries none), no two related (path.ts).
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { shuffle } from '../../onion/crypto/random.js'
import { MarshmelloError } from '../../errors.js'
import { authorityPin, verifyConsensus, type AuthorityPin, type Consensus } from '../../onion/directory/consensus.js'
import { fetchDocument } from '../common/signed-fetch.js'
import { DEVNET_FILE, type DevnetInfo } from '../devnet/devnet-file.js'

export interface NetworkSettings {
  /** bootstrap relays (https URLs); the first that answers is used */
  relays: string[]
  /** pinned authority key fingerprints, comma-separated (the server's first) */
  directoryKey: string
  /** how many of them must sign a consensus (default: a majority) */
  directoryThreshold?: number
  devnetDir?: string
}

/** the pin a client verifies every consensus with (PROTOCOL §7.8) */
export const networkPin = (n: Pick<NetworkSettings, 'directoryKey' | 'directoryThreshold'>): AuthorityPin => authorityPin(n.directoryKey, n.directoryThreshold)

/** Reads DIR/devnet.json. Throws MM_ERR_DEVNET with what to do when it is missing. */
export function readDevnet (dir: string): NetworkSettings {
  const file = join(resolve(dir), DEVNET_FILE)
  let doc: DevnetInfo
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    throw new MarshmelloError('MM_ERR_DEVNET', `no devnet at ${file}: start one with \`marshmello devnet --dir ${dir}\``)
  }
  if (!doc || !Array.isArray(doc.relays) || typeof doc.directoryKey !== 'string') throw new MarshmelloError('MM_ERR_DEVNET', `${file} is not a devnet description`)
  const threshold = Number.isSafeInteger(doc.directoryThreshold) ? { directoryThreshold: doc.directoryThreshold } : {}
  return { relays: doc.relays.map((r) => r.url), directoryKey: doc.directoryKey, ...threshold, devnetDir: resolve(dir) }
}

/** fetches and verifies (as of `now`) the consensus from the first bootstrap relay that answers */
export async function fetchConsensus (relays: string[], directoryKey: string | AuthorityPin, localAddress?: string, now = Date.now()): Promise<Consensus> {
  const order = shuffle(relays)
  let last: Error | undefined
  for (const url of order) {
    try {
      const res = await fetchDocument(`${url.replace(/\/$/, '')}/consensus`, { localAddress })
      if (res.status !== 200) throw new MarshmelloError('MM_ERR_NO_CONSENSUS', `${url} has no consensus yet (HTTP ${res.status})`)
      return verifyConsensus(JSON.parse(res.text), directoryKey, now)
    } catch (err) {
      last = err as Error
    }
  }
  throw new MarshmelloError('MM_ERR_NO_CONSENSUS', `could not get a valid consensus from ${relays.length} bootstrap relay(s): ${last?.message ?? 'none given'}`)
}

export { choosePath, type PathChoice } from '../../onion/directory/path.js'
