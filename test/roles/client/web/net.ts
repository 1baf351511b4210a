// A small real network for client tests: the server and N relays as separate
// processes of the built CLI on 127.0.0.1 (free ports), a devnet.json the client
// reads with --devnet, and a stop() that ends every process.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { httpsGetJson, run, tmp, type Proc } from '../../../helpers/net.js'

export interface SmallNet { dir: string, directoryKey: string, procs: Proc[], stop: () => Promise<void> }

export async function startSmallNet (relays = 3): Promise<SmallNet> {
  const dir = tmp('mm-web-net-')
  const procs: Proc[] = []
  const stop = async () => { await Promise.all(procs.map((p) => p.kill('SIGTERM'))) }
  try {
    const server = run(['server', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(dir, 'server')])
    procs.push(server)
    const url = (await server.waitFor(/listening on (https:\/\/127\.0\.0\.1:(\d+))/))
    const directoryKey = (await server.waitFor(/directory key ([0-9a-f]{64})/))[1]
    const finalHop = (await server.waitFor(/final hop identity ([0-9a-f]{64})/))[1]
    const listed = await Promise.all(Array.from({ length: relays }, async (_, i) => {
      const nickname = `relay${i + 1}`
      const p = run(['relay', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(dir, nickname), '--directory', url[1], '--directory-key', directoryKey, '--nickname', nickname])
      procs.push(p)
      const m = await p.waitFor(/relay ([0-9a-f]{64}) listening on (https:\/\/127\.0\.0\.1:(\d+))/)
      return { nickname, url: m[2], host: '127.0.0.1', port: Number(m[3]), fingerprint: m[1] }
    }))
    // the client bootstraps from a relay: wait until its consensus lists everyone
    const deadline = Date.now() + 20_000
    for (;;) {
      const c = await httpsGetJson(`${listed[0].url}/consensus`).catch(() => null) as { relays?: unknown[], server?: unknown } | null
      if (c?.server && (c.relays?.length ?? 0) >= relays) break
      if (Date.now() > deadline) throw new Error(`the consensus did not list ${relays} relays and the server within 20 s`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const port = Number(url[2])
    writeFileSync(join(dir, 'devnet.json'), JSON.stringify({
      version: 1,
      directoryKey,
      server: { url: url[1], host: '127.0.0.1', port, fingerprint: finalHop },
      relays: listed,
    }))
    return { dir, directoryKey, procs, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
