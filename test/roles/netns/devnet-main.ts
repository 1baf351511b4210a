// Run inside the `ops` namespace by real-hosts.test.ts (`ip netns exec NS node --import
// tsx devnet-main.ts NSPREFIX DIR`): the devnet's own start-up code (startDevnet) with
// each role under `ip netns exec` of its own host's namespace, the server tracing every
// peer that opens a cell channel; once ready, a third relay on B's address. Prints one
// JSON line per event on stdout; stops everything when its stdin closes.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { verifyConsensus } from '../../../src/onion/directory/consensus.js'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { spawnRole, type SpawnRole } from '../../../src/roles/devnet/children.js'
import { relayArgs, RELAY_LINE } from '../../../src/roles/devnet/relay-slots.js'
import { startDevnet } from '../../../src/roles/devnet/index.js'
import { EXTRA_RELAY, RELAYS, SERVER, hostIp } from './hosts.js'

const [prefix, dir] = process.argv.slice(2)
const BIN = fileURLToPath(new URL('../../../build/cli.js', import.meta.url))
const say = (e: Record<string, unknown>) => process.stdout.write(JSON.stringify(e) + '\n')
const nsOf = (role: string): string => role === 'server' ? SERVER.name : RELAYS[Number(role.replace('relay', '')) - 1] ?? EXTRA_RELAY
const lines: Record<string, string[]> = {}
const spawn: SpawnRole = (role, args, onLine) => spawnRole(role, args, onLine, {
  prefix: ['ip', 'netns', 'exec', `${prefix}-${nsOf(role)}`],
  command: { file: process.execPath, args: [BIN] },
  env: { NODE_OPTIONS: '' },
})

const peers = join(dir, 'server-peers.txt')
const devnet = await startDevnet({
  relays: RELAYS.length,
  dir,
  portBase: 0,
  host: SERVER.ip,
  relayHosts: RELAYS.map(hostIp),
  // the devnet lists private test networks without a per-IP limit; these hosts use the real rule (2 per IP)
  serverArgs: ['--trace-peers', peers, '--max-relays-per-ip', '2'],
  keepGoing: true,
  stopGraceMs: 3000,
  readyTimeoutMs: 40_000,
}, {
  spawn,
  onChildLine: (role, line) => { (lines[role] ??= []).push(line) },
  onChildExit: (e) => { if (!e.expected) say({ event: 'child-exit', ...e }) },
}).catch((err: Error) => { say({ event: 'error', message: err.message, lines }); process.exit(1) })
let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await Promise.all([devnet.stop(), extra.stop(3000)])
  say({ event: 'stopped', lines })
  process.exit(0)
}
process.stdin.on('end', () => void stop()).on('close', () => void stop()).resume()
say({ event: 'ready', info: devnet.info, peers })

// a third relay on B's address, as the devnet starts its own
const i = RELAYS.length + 1
const extra = spawn(`relay${i}`, relayArgs({ i, nickname: `relay${i}`, host: hostIp(EXTRA_RELAY), dataDir: join(dir, `relay-${i}`), port: 0, extraArgs: [], status: 'starting' },
  ['--directory', devnet.info.directoryUrl!, '--directory-key', devnet.info.directoryKey]), (role, line) => { (lines[role] ??= []).push(line) })
// it says it listens after its first descriptor post was answered (accepted or refused)
const m = await extra.waitForLine(RELAY_LINE, Date.now() + 20_000)
const consensus = async () => verifyConsensus(JSON.parse((await fetchDocument(`${devnet.info.directoryUrl}/v1/directory/consensus`)).text), devnet.info.directoryKey, Date.now())
say({ event: 'extra', fingerprint: m[1], url: m[2], listed: (await consensus()).relays.map((r) => ({ fingerprint: r.fingerprint, host: r.host, port: r.port })), lines: lines[`relay${i}`] ?? [] })
