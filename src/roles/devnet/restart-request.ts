// `marshmello devnet restart [relayN …] --dir DIR`: asks the devnet running in DIR to
// start stopped relays again. It names them in DIR/restart-request.json and sends the
// devnet SIGUSR2 (its pid is in devnet.json); the devnet restarts them with their
// identity and address and rewrites devnet.json once the consensus lists each one
// again, which is what this command waits for. Without names: every stopped relay.
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEVNET_FILE, type DevnetInfo } from './devnet-file.js'

export const RESTART_FILE = 'restart-request.json'
export const RESTART_SIGNAL = 'SIGUSR2'

export function isAlive (pid: unknown): boolean {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return false
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

function readInfo (dir: string): DevnetInfo {
  let info: DevnetInfo
  try {
    info = JSON.parse(readFileSync(join(dir, DEVNET_FILE), 'utf8')) as DevnetInfo
  } catch {
    throw new Error(`no devnet runs in ${dir} (no readable ${DEVNET_FILE}); start one with \`marshmello devnet --dir ${dir}\``)
  }
  if (!isAlive(info.pid)) throw new Error(`the devnet of ${dir} (pid ${info.pid}) is not running`)
  return info
}

/** the devnet's side: the relays a request names (and removes the request), or undefined: every stopped one */
export function takeRestartRequest (dir: string): string[] | undefined {
  const file = join(dir, RESTART_FILE)
  let text: string
  try { text = readFileSync(file, 'utf8') } catch { return undefined }
  try { unlinkSync(file) } catch { /* taken already */ }
  try {
    const names = (JSON.parse(text.slice(0, 4096)) as { relays?: unknown }).relays
    if (Array.isArray(names) && names.every((x) => typeof x === 'string')) return names.slice(0, 64) as string[]
  } catch { /* not ours: restart every stopped relay */ }
  return undefined
}

/** the command's side; resolves with one line per relay, throws when the devnet is gone or a relay did not come back in time */
export async function requestRestart (o: { dir: string, relays: string[], timeoutMs?: number, say: (line: string) => void }): Promise<void> {
  const dir = resolve(o.dir)
  const info = readInfo(dir)
  const known = new Set(info.relays.map((r) => r.nickname))
  const unknown = o.relays.filter((r) => !known.has(r))
  if (unknown.length) throw new Error(`the devnet of ${dir} has no ${unknown.join(', ')} (it runs relay1 … relay${info.relays.length})`)
  const asked = o.relays.length ? info.relays.filter((r) => o.relays.includes(r.nickname)) : info.relays
  for (const r of asked) if (isAlive(r.pid)) o.say(`${r.nickname} is running (pid ${r.pid})`)
  const targets = asked.filter((r) => !isAlive(r.pid))
  if (targets.length === 0) { if (!o.relays.length) o.say('every relay is running'); return }

  const tmp = join(dir, `${RESTART_FILE}.${process.pid}.tmp`)
  writeFileSync(tmp, JSON.stringify({ relays: targets.map((r) => r.nickname) }) + '\n', { mode: 0o600 })
  renameSync(tmp, join(dir, RESTART_FILE))
  process.kill(info.pid, RESTART_SIGNAL)

  const until = Date.now() + (o.timeoutMs ?? 60_000)
  const waiting = new Map(targets.map((r) => [r.nickname, r.pid]))
  while (waiting.size > 0) {
    if (!isAlive(info.pid)) throw new Error(`the devnet (pid ${info.pid}) stopped before ${[...waiting.keys()].join(', ')} came back`)
    if (Date.now() > until) throw new Error(`${[...waiting.keys()].join(', ')} did not come back within ${Math.round((o.timeoutMs ?? 60_000) / 1000)} s; the devnet's output says why`)
    await sleep(200)
    let now: DevnetInfo
    try { now = JSON.parse(readFileSync(join(dir, DEVNET_FILE), 'utf8')) as DevnetInfo } catch { continue } // mid-rename, or stopping
    for (const r of now.relays) {
      const before = waiting.get(r.nickname)
      if (before !== undefined && r.pid !== before && isAlive(r.pid)) {
        waiting.delete(r.nickname)
        o.say(`${r.nickname} is back (pid ${r.pid}) at ${r.url}, listed in the consensus again`)
      }
    }
  }
}
