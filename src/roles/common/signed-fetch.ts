// HTTP(S) for signed documents only: the consensus (verified against the pinned
// directory key) and descriptors (self-signed by their identity keys). Their
// authenticity never rests on TLS, so hops' self-signed certificates are accepted
// here; cell channels, by contrast, always pin the certificate (channel.ts).
import { Agent, request } from 'undici'
import { MarshmelloError } from '../../errors.js'

const agent = new Agent({
  keepAliveTimeout: 30_000,
  connect: { rejectUnauthorized: false, timeout: 5000, minVersion: 'TLSv1.3', maxCachedSessions: 0 }, // documents are signature-checked against a pinned key, not TLS
})

const byAddress = new Map<string, Agent>()
/** one keep-alive agent per source address (undici reads localAddress at the top level) */
function agentFrom (localAddress: string): Agent {
  let a = byAddress.get(localAddress)
  if (!a) {
    a = new Agent({ localAddress, keepAliveTimeout: 30_000, connect: { rejectUnauthorized: false, timeout: 5000, minVersion: 'TLSv1.3', maxCachedSessions: 0 } }) // signature-checked documents; not pinned by TLS
    byAddress.set(localAddress, a)
  }
  return a
}

export interface SignedFetchResult { status: number, text: string }

const MAX_DOC = 4 * 1024 * 1024

async function readBounded (body: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = []
  let n = 0
  for await (const chunk of body) {
    n += chunk.length
    if (n > MAX_DOC) throw new MarshmelloError('MM_ERR_TOO_LARGE', 'document larger than 4 MiB')
    parts.push(Buffer.from(chunk))
  }
  return Buffer.concat(parts).toString('utf8')
}

export async function fetchDocument (url: string, init: { method?: 'GET' | 'POST', json?: unknown, localAddress?: string } = {}): Promise<SignedFetchResult> {
  try {
    const res = await request(url, {
      method: init.method ?? 'GET',
      dispatcher: init.localAddress ? agentFrom(init.localAddress) : agent, // signature-checked documents; not pinned by TLS
      headers: init.json === undefined ? {} : { 'content-type': 'application/json' },
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    })
    return { status: res.statusCode, text: await readBounded(res.body) }
  } catch (err) {
    if (err instanceof MarshmelloError) throw err
    throw new MarshmelloError('MM_ERR_UNREACHABLE', `cannot reach ${new URL(url).origin}: ${(err as any).code ?? (err as Error).message}`)
  }
}
