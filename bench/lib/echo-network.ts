// The onion-only network of the echo case: three relay processes (the built CLI, run
// as the devnet runs them) and a final hop process that echoes (echo-hop-main.ts),
// listed in a consensus file the bench signs with a key of its own, as Tor would be
// measured against an echo server: no server, no directory, no store on the path.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeFileSync, renameSync } from 'node:fs'
import { ed25519KeyPair } from '../../src/onion/crypto/primitives.js'
import { directoryFingerprint, signConsensus } from '../../src/onion/directory/consensus.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'
import { fetchDocument } from '../../src/roles/common/signed-fetch.js'
import { waitForConsensus } from '../../src/roles/devnet/consensus-wait.js'
import { BENCH_RELAY_ARGS, benchSpawn, quietChildren, type BenchRole } from './network.js'
import { onStop, tmp } from './procs.js'

export interface EchoNetwork {
  /** the three relays, then the echo final hop */
  path: Descriptor[]
  relays: BenchRole[]
  hop: { pid: number }
}

export const ECHO_RELAY_HOSTS = ['127.0.0.31', '127.0.0.32', '127.0.0.33']
const ECHO_HOST = '127.0.0.30'
const ECHO_MAIN = fileURLToPath(new URL('./echo-hop-main.ts', import.meta.url))
const RELAY_LINE = /^relay ([0-9a-f]{64}) listening on (https:\/\/\S+)/

export async function startEchoNetwork (nodeArgs: string[] = []): Promise<EchoNetwork> {
  const dir = tmp('mm-bench-echo-')
  const key = ed25519KeyPair()
  const fingerprint = directoryFingerprint(key.publicKey)
  const file = join(dir, 'consensus.json')
  const deadline = Date.now() + 60_000
  const spawnCli = benchSpawn(() => nodeArgs)
  const spawnEcho = benchSpawn(() => nodeArgs, { file: process.execPath, args: ['--import', 'tsx', ECHO_MAIN] })

  const hop = spawnEcho('echo', [ECHO_HOST], quietChildren.onChildLine)
  onStop(async () => { await hop.stop(5000) })
  const relays = ECHO_RELAY_HOSTS.map((host, k) => {
    const ch = spawnCli(`echo-relay${k + 1}`, ['relay', '--port', '0', '--host', host, '--data-dir', join(dir, `r${k + 1}`),
      '--consensus', file, '--directory-key', fingerprint, '--nickname', `echorelay${k + 1}`, ...BENCH_RELAY_ARGS], quietChildren.onChildLine)
    onStop(async () => { await ch.stop(5000) })
    return ch
  })
  const hopDescriptor = JSON.parse((await hop.waitForLine(/^echo hop listening (\{.*\})$/, deadline))[1]) as Descriptor
  const listening = await Promise.all(relays.map(async (ch, k) => {
    const m = await ch.waitForLine(RELAY_LINE, deadline)
    const res = await fetchDocument(`${m[2]}/descriptor`)
    return { nickname: `echorelay${k + 1}`, fingerprint: m[1], url: m[2], pid: ch.pid, descriptor: JSON.parse(res.text) as Descriptor }
  }))

  const now = Date.now()
  const doc = signConsensus({ v: 1, validAfter: now - 1000, validUntil: now + 3600_000, directoryKey: key.publicKey.toString('base64'), relays: listening.map((r) => r.descriptor), server: hopDescriptor }, key.privateKey)
  writeFileSync(`${file}.tmp`, JSON.stringify(doc))
  renameSync(`${file}.tmp`, file)
  // relays re-read the file every second
  await waitForConsensus({ relays: listening, directoryKey: fingerprint, deadline })
  return { path: [...listening.map((r) => r.descriptor), hopDescriptor], relays: listening.map((r) => ({ pid: r.pid, url: r.url })), hop: { pid: hop.pid } }
}
