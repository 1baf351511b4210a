// How a client finds the network (docs/PROTOCOL.md §7): from a devnet's devnet.json or
// a bootstrap relay URL plus the pinned directory key; fetches the signed consensus
// from a relay (never from the server, P1) and chooses paths: the entry the guard
// module picked (circuits/guards.ts), then distinct middle and exit relays, no two in
// one /16 (waived when every relay is on loopback).
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { randomInt } from '../../onion/crypto/random.js'
import { MarshmelloError } from '../../errors.js'
import { verifyConsensus, type Consensus } from '../../onion/directory/consensus.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import { fetchDocument } from '../common/signed-fetch.js'
import { DEVNET_FILE, type DevnetInfo } from '../devnet/devnet-file.js'

export interface NetworkSettings {
  /** bootstrap relays (https URLs); the first that answers is used */
  relays: string[]
  directoryKey: string
  devnetDir?: string
}

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
  return { relays: doc.relays.map((r) => r.url), directoryKey: doc.directoryKey, devnetDir: resolve(dir) }
}

/** fetches and verifies (as of `now`) the consensus from the first bootstrap relay that answers */
export async function fetchConsensus (relays: string[], directoryKey: string, localAddress?: string, now = Date.now()): Promise<Consensus> {
  const order = [...relays].sort(() => randomInt(3) - 1)
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

const isLoopback = (h: string) => h.startsWith('127.') || h === 'localhost' || h === '::1'
const slash16 = (h: string) => h.split('.').slice(0, 2).join('.')

/** `guard`: the first hop's fingerprint (the entry, whether or not it is the client's guard) */
export interface PathChoice { path: Descriptor[], guard: string }

/**
 * Chooses `hops` relays then the final hop. `guard` (the entry the guard module picked)
 * comes first when usable; else the first hop is drawn like the others. `exclude` lists
 * fingerprints to avoid (e.g. a relay that just failed).
 */
export function choosePath (c: Consensus, opts: { hops?: number, guard?: string, exclude?: ReadonlySet<string> } = {}): PathChoice {
  const hops = opts.hops ?? 3
  if (!c.server) throw new MarshmelloError('MM_ERR_NO_SERVER', 'the consensus lists no server yet; try again in a few seconds')
  const pool = c.relays.filter((r) => !opts.exclude?.has(r.fingerprint))
  if (pool.length < hops) throw new MarshmelloError('MM_ERR_TOO_FEW_RELAYS', `the consensus lists ${pool.length} usable relay(s); a circuit needs ${hops}`)
  const loopback = pool.every((r) => isLoopback(r.host))
  const chosen: Descriptor[] = []
  const fits = (r: Descriptor) => !chosen.some((x) => x.fingerprint === r.fingerprint || (!loopback && slash16(x.host) === slash16(r.host)))
  const guard = pool.find((r) => r.fingerprint === opts.guard)
  // the entry is the guard the guard module chose, or the path fails: never another relay in its place
  if (opts.guard !== undefined && !guard) throw new MarshmelloError('MM_ERR_NO_GUARD', 'the chosen guard is not usable in this consensus; the client will not enter through another relay')
  if (guard) chosen.push(guard)
  while (chosen.length < hops) {
    const candidates = pool.filter(fits)
    if (candidates.length === 0) throw new MarshmelloError('MM_ERR_TOO_FEW_RELAYS', 'not enough relays in distinct /16 networks for a circuit')
    chosen.push(candidates[randomInt(candidates.length)])
  }
  return { path: [...chosen, c.server], guard: chosen[0].fingerprint }
}
