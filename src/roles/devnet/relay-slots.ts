// The devnet's relays, one slot each: how relay i is started (its flags, port and data
// dir, the same on every restart, so it keeps its identity and its address), their
// start-up paced so that their first descriptor posts fit the directory's
// per-address budget (every relay posts from the one loopback address; heartbeats of
// listed relays have a budget of their own, POSTS_PER_HOP), and a restart that
// reports the relay back only once the consensus lists it again.
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import { POSTS_PER_ADDRESS } from '../server/directory.js'
import type { RoleProcess } from './children.js'
import { waitForConsensus } from './consensus-wait.js'
import type { RelayInfo } from './devnet-file.js'

export const RELAY_LINE = /^relay ([0-9a-f]{64}) listening on (https:\/\/\S+)/

export interface RelaySlot {
  i: number
  nickname: string
  host: string
  dataDir: string
  /** its port: the configured one, or the one it got on its first start (port base 0) */
  port: number
  extraArgs: string[]
  ch?: RoleProcess
  /** up: listed; down: exited; starting: (re)started, not yet listed */
  status: 'starting' | 'up' | 'down'
  /** a pending automatic restart */
  timer?: NodeJS.Timeout
}

/** `consensus`: how it finds and checks the consensus (--directory URL or --consensus FILE, and --directory-key) */
export const relayArgs = (s: RelaySlot, consensus: string[]): string[] =>
  ['relay', '--port', String(s.port), '--host', s.host, '--data-dir', s.dataDir, ...consensus, '--nickname', s.nickname, ...s.extraArgs]

export function relaySlots (o: { n: number, dir: string, host: string, portBase: number, relayHosts?: string[], extraArgs: (i: number) => string[] }): RelaySlot[] {
  return Array.from({ length: o.n }, (_, k) => {
    const i = k + 1
    return {
      i,
      nickname: `relay${i}`,
      host: o.relayHosts?.[k] ?? o.host,
      dataDir: join(o.dir, `relay-${i}`),
      port: o.portBase === 0 ? 0 : o.portBase + i,
      extraArgs: o.extraArgs(i),
      status: 'starting',
    }
  })
}

const portOf = (url: string): number => Number(new URL(url).port)

/** waits for the slot's child to say where it listens; the slot keeps that port for restarts */
export async function relayListening (s: RelaySlot, deadline: number): Promise<RelayInfo> {
  const ch = s.ch!
  const m = await ch.waitForLine(RELAY_LINE, deadline)
  s.port = portOf(m[2])
  return { nickname: s.nickname, url: m[2], host: s.host, port: s.port, pid: ch.pid, fingerprint: m[1], dataDir: s.dataDir }
}

/** spare tokens left in the address's burst after the first wave */
const SPARE = 4

/**
 * Starts every slot (launch) and waits until each listens. Each relay posts its first
 * descriptor before it says it listens, all from one address: the first
 * burst - SPARE start at once; after they listen (their posts spent at most that
 * many tokens, SPARE are left, refilling at perSecond), one more starts every
 * 1/perSecond seconds once the spare tokens are spoken for, so none is refused.
 */
export async function startRelays (slots: RelaySlot[], launch: (s: RelaySlot) => void, o: { deadline: number, aborted: () => boolean }): Promise<RelayInfo[]> {
  const wave = Math.max(1, POSTS_PER_ADDRESS.burst - SPARE)
  const start = (s: RelaySlot): Promise<RelayInfo> => {
    if (o.aborted()) throw new Error('a child exited while the devnet was starting')
    launch(s)
    return relayListening(s, o.deadline)
  }
  const first = await Promise.all(slots.slice(0, wave).map(start))
  const rest = await Promise.all(slots.slice(wave).map(async (s, j) => {
    await sleep(Math.max(0, j + 1 - SPARE) * 1000 / POSTS_PER_ADDRESS.perSecond)
    return start(s)
  }))
  return [...first, ...rest]
}

/** after a restart: the directory and the relay's own cached copy list it again */
export function waitListed (r: RelayInfo, o: { directory?: string, directoryKey: string, deadline: number, aborted: () => boolean, publishedAfter?: number }): Promise<void> {
  return waitForConsensus({ directory: o.directory, relays: [r], directoryKey: o.directoryKey, deadline: o.deadline, aborted: o.aborted, publishedAfter: o.publishedAfter })
}
