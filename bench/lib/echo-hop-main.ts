// Bench-only entry, run as its own process (`node --import tsx bench/lib/echo-hop-main.ts
// HOST`): the real final hop (registerFinalHop over src/onion/circuits/final-hop.ts)
// with a handler that answers every request with its own body at once: no auth, no
// store. Prints its signed descriptor on one stdout line. Kept out of src/ so the
// shipped program has no test-only role.
import { onShutdown } from '../../src/roles/common/process.js'
import { startEchoHop } from '../../test/helpers/net.js'

const host = process.argv[2] ?? '127.0.0.20'
const hop = await startEchoHop(host, async (req) => ({ status: 200, headers: { 'content-type': 'application/octet-stream' }, body: req.body }))
onShutdown(hop.close)
process.stdout.write(`echo hop listening ${JSON.stringify(hop.descriptor)}\n`)
