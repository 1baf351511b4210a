// A small live network for the client tests: the server and N relays as real
// processes on loopback (relay i on 127.0.0.1(10+i)), ready once the signed
// consensus lists every relay and the server; writes DIR/devnet.json as
// `marshmello devnet` does, so clients connect with `--devnet DIR`.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { verifyConsensus, type Consensus } from '../../../src/onion/directory/consensus.js'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { run, tmp, type Proc } from '../../helpers/net.js'

export interface TestRelay { proc: Proc, nickname: string, host: string, port: number, fingerprint: string, url: string }

export interface TestNetwork {
  dir: string
  directoryKey: string
  server: Proc
  serverUrl: string
  relays: TestRelay[]
  consensus: () => Promise<Consensus>
  stop: () => Promise<void>
}

export async function startTestNetwork (opts: { relays?: number, relayArgs?: (i: number) => string[] } = {}): Promise<TestNetwork> {
  const n = opts.relays ?? 3
  const dir = tmp('mm-client-net-')
  const server = run(['server', '--port', '0', '--data-dir', join(dir, 'server'), '--relay-stale', '30'])
  const procs: Proc[] = [server]
  const stop = async () => { await Promise.all(procs.map((p) => p.kill('SIGKILL'))) }
  try {
    const m = await server.waitFor(/listening on (https:\/\/127\.0\.0\.1:(\d+))[\s\S]*directory key ([0-9a-f]{64})/)
    const serverUrl = m[1]
    const directoryKey = m[3]
    const relays: TestRelay[] = await Promise.all(Array.from({ length: n }, async (_, k) => {
      const i = k + 1
      const host = `127.0.0.${10 + i}`
      const nickname = `relay${i}`
      const proc = run(['relay', '--port', '0', '--host', host, '--data-dir', join(dir, `r${i}`), '--directory', serverUrl, '--directory-key', directoryKey, '--nickname', nickname, ...(opts.relayArgs?.(i) ?? [])])
      procs.push(proc)
      const r = await proc.waitFor(/relay ([0-9a-f]{64}) listening on (https:\/\/[^:]+:(\d+))/)
      return { proc, nickname, host, port: Number(r[3]), fingerprint: r[1], url: r[2] }
    }))
    const consensus = async () => {
      const res = await fetchDocument(`${serverUrl}/v1/directory/consensus`)
      if (res.status !== 200) throw new Error(`consensus: HTTP ${res.status}`)
      return verifyConsensus(JSON.parse(res.text), directoryKey, Date.now())
    }
    // ready when the directory and every relay's cached copy list every relay and the
    // server (relays refuse to extend to a hop their copy does not list, P7)
    const complete = (c: Consensus | null) => !!c?.server && relays.every((r) => c.relays.some((d) => d.fingerprint === r.fingerprint))
    const fromRelay = async (url: string) => {
      const res = await fetchDocument(`${url}/consensus`)
      return res.status === 200 ? verifyConsensus(JSON.parse(res.text), directoryKey, Date.now()) : null
    }
    const deadline = Date.now() + 30_000
    for (;;) {
      const all = await Promise.all([consensus(), ...relays.map((r) => fromRelay(r.url))].map((p) => p.catch(() => null)))
      if (all.every(complete)) break
      if (Date.now() > deadline) throw new Error('the consensus never listed every relay')
      await new Promise((r) => setTimeout(r, 250))
    }
    const [, host, port] = serverUrl.match(/^https:\/\/([^:]+):(\d+)$/)!
    const c = await consensus()
    writeFileSync(join(dir, 'devnet.json'), JSON.stringify({
      version: 1,
      directoryKey,
      server: { url: serverUrl, host, port: Number(port), fingerprint: c.server!.fingerprint },
      relays: relays.map((r) => ({ nickname: r.nickname, url: r.url, host: r.host, port: r.port, fingerprint: r.fingerprint })),
    }, null, 2))
    return { dir, directoryKey, server, serverUrl, relays, consensus, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
