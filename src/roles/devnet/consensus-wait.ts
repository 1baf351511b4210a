// Start-up readiness of a local network: polls the directory's consensus and every
// relay's cached copy (what clients bootstrap from) until each verifies against the
// directory key, names a final hop, and lists every relay; and, for a devnet whose
// relays read a consensus file, until each serves the document just written.
import { setTimeout as sleep } from 'node:timers/promises'
import { verifyConsensus } from '../../onion/directory/consensus.js'
import { fetchDocument } from '../common/signed-fetch.js'

export interface ConsensusWait {
  /** the directory's base URL (the server's, or the directory service's in split mode); none when relays read a consensus file */
  directory?: string
  relays: { nickname: string, url: string, fingerprint: string }[]
  directoryKey: string
  /** epoch ms after which it gives up */
  deadline: number
  /** checked between polls: a child died, stop waiting */
  aborted?: () => boolean
  /** between polls, in ms (default 100) */
  everyMs?: number
  /**
   * a relay counts only with a descriptor published at or after this (epoch ms): a restarted
   * relay's new one, not the copy the authorities' votes still carry from before
   */
  publishedAfter?: number
}

export async function waitForConsensus (w: ConsensusWait): Promise<void> {
  const want = w.relays.map((r) => r.fingerprint)
  const sources = [...(w.directory ? [{ name: 'server', url: `${w.directory}/v1/directory/consensus` }] : []), ...w.relays.map((r) => ({ name: r.nickname, url: `${r.url}/consensus` }))]
  const listed = new Map<string, number>()
  let lastError = ''
  const pending = new Set(sources.map((s) => s.name))
  while (Date.now() < w.deadline) {
    if (w.aborted?.()) throw new Error('a child exited while the devnet was starting')
    await Promise.all(sources.filter((s) => pending.has(s.name)).map(async (s) => {
      try {
        const res = await fetchDocument(s.url)
        if (res.status !== 200) { lastError = `${s.name}: HTTP ${res.status}`; return }
        const consensus = verifyConsensus(JSON.parse(res.text), w.directoryKey, Date.now())
        const have = new Set(consensus.relays.filter((r) => r.published >= (w.publishedAfter ?? 0)).map((r) => r.fingerprint))
        const n = want.filter((f) => have.has(f)).length
        listed.set(s.name, n)
        if (!consensus.server) { lastError = `${s.name}: no final hop listed yet`; return }
        if (n === want.length) pending.delete(s.name)
      } catch (err) {
        lastError = `${s.name}: ${(err as Error).message}`
      }
    }))
    if (pending.size === 0) return
    await sleep(w.everyMs ?? 100)
  }
  const behind = [...pending].map((name) => `${name} lists ${listed.get(name) ?? 0}`).join(', ')
  throw new Error(`the consensus did not list all ${want.length} relays in time (${behind})${lastError ? `; last error: ${lastError}` : ''}`)
}

/** until each of `urls` serves a consensus with this very (first) signature (relays re-read a consensus file every second) */
export async function waitServing (w: { urls: string[], signature: string, deadline: number, everyMs?: number }): Promise<void> {
  const pending = new Set(w.urls)
  let lastError = ''
  while (Date.now() < w.deadline) {
    await Promise.all([...pending].map(async (url) => {
      try {
        const res = await fetchDocument(url)
        if (res.status === 200 && (JSON.parse(res.text) as { signatures?: { signature?: unknown }[] }).signatures?.[0]?.signature === w.signature) pending.delete(url)
        else lastError = `${url}: HTTP ${res.status}`
      } catch (err) {
        lastError = `${url}: ${(err as Error).message}`
      }
    }))
    if (pending.size === 0) return
    await sleep(w.everyMs ?? 50)
  }
  throw new Error(`${pending.size} of ${w.urls.length} relays did not take up the new consensus in time${lastError ? ` (last: ${lastError})` : ''}`)
}
