// Run inside the client's namespace by real-hosts.test.ts (`ip netns exec NS node
// --import tsx client-main.ts DEVNET_DIR HOME CIRCUITS`): the real client on the
// devnet's devnet.json registers, sends a room message and reads it back through the
// onion, then builds CIRCUITS fresh circuits (/newcircuit) through its guard and
// prints each path (hosts and fingerprints) as one JSON line.
import { openClient } from '../../../src/roles/client/setup.js'

const [dir, home, count] = process.argv.slice(2)
const out = (e: Record<string, unknown>) => process.stdout.write(JSON.stringify(e) + '\n')
const client = await openClient({ home, devnet: dir, rotate: 600, verbose: false })
try {
  await client.register('carol', 'a long enough test password')
  await client.login('carol', 'a long enough test password')
  const sent = await client.sendRoom('netns', 'hello from another host')
  out({ event: 'sent', id: sent.id })
  for (let k = 0; k < Number(count); k++) {
    const c = await client.circuits.newCircuit()
    out({ event: 'path', hops: c.path.map((d) => ({ host: d.host, port: d.port, fingerprint: d.fingerprint, role: d.role })) })
  }
  const read = await client.readRoom('netns')
  out({ event: 'read', texts: read.messages.map((m) => m.text) })
} catch (err) {
  process.stderr.write(`client: ${(err as Error).message}\n`)
  process.exitCode = 1
} finally {
  await client.circuits.close()
}
// keep-alive agents would hold the process open
process.exit()
