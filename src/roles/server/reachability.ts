// Before the directory lists a hop, it checks that the hop really listens where its
// descriptor says: an HTTPS GET of /descriptor at that address, pinned to the
// descriptor's own certificate, must return the same identity. Otherwise anyone
// could list 127.0.0.1:22 or 169.254.169.254 under a fresh key and make relays
// connect there (P7). Results are cached per identity and address. Every failure is
// one generic answer, given no sooner than the probe's full timeout: neither the
// connect error (ECONNREFUSED, a TLS alert, another identity) nor how fast it came
// tells the poster anything about what listens there (no port scanner).
import { request } from 'node:https'
import { LRUCache } from 'lru-cache'
import { MarshmelloError } from '../../errors.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'
import { pinnedClientTls } from '../common/link-tls.js'

export type Probe = (d: Descriptor) => Promise<void>

/** the one answer to every failed probe: the address and what to do, never why */
const unreachable = (d: Descriptor) =>
  new MarshmelloError('MM_ERR_REACHABILITY', `${d.host}:${d.port} did not answer as this hop; a relay is listed only where it answers /descriptor with its own identity and certificate`)

/**
 * Fetches https://host:port/descriptor pinned to d.tlsCert; throws MM_ERR_REACHABILITY
 * unless it names d's identity. A failure is reported `failAfterMs` after the start
 * (default: the timeout), whatever went wrong and however fast.
 */
export async function probeHop (d: Descriptor, timeoutMs = 3000, failAfterMs = timeoutMs): Promise<void> {
  const started = Date.now()
  const ok = await attempt(d, timeoutMs)
  if (ok) return
  const wait = started + failAfterMs - Date.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  throw unreachable(d)
}

/** true when the hop answered with its own identity; false on any failure (the reason is deliberately dropped) */
function attempt (d: Descriptor, timeoutMs: number): Promise<boolean> {
  return new Promise((done) => {
    // the whole exchange, not just socket idleness, is bounded: a trickling answer fails too
    const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs)
    const resolve = (ok: boolean) => { clearTimeout(timer); done(ok) }
    const reject = () => resolve(false)
    const req = request({
      host: d.host,
      port: d.port,
      path: '/descriptor',
      method: 'GET',
      ...pinnedClientTls(d),
      timeout: timeoutMs,
      agent: false,
    }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
        if (body.length > 64 * 1024) req.destroy(new Error('descriptor too large'))
      })
      res.on('end', () => {
        try {
          const got = JSON.parse(body) as { fingerprint?: string }
          resolve(res.statusCode === 200 && got.fingerprint === d.fingerprint)
        } catch {
          reject()
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** a probe that remembers hops it verified (per identity and address) */
export function cachedProbe (probe: Probe = probeHop, max = 10_000): Probe {
  const ok = new LRUCache<string, true>({ max, ttl: 3600_000 })
  return async (d) => {
    const k = `${d.fingerprint}@${d.host}:${d.port}`
    if (ok.has(k)) return
    await probe(d)
    ok.set(k, true)
  }
}
