// Before the directory lists a hop, it checks that the hop really listens where its
// descriptor says: an HTTPS GET of /descriptor at that address, pinned to the
// descriptor's own certificate, must return the same identity. Otherwise anyone
// could list 127.0.0.1:22 or 169.254.169.254 under a fresh key and make relays
// connect there (P7). Results are cached per identity and address.
import { request } from 'node:https'
import { LRUCache } from 'lru-cache'
import { MarshmelloError } from '../../errors.js'
import { certificateFingerprint } from '../../onion/crypto/certificate.js'
import type { Descriptor } from '../../onion/directory/descriptor.js'

export type Probe = (d: Descriptor) => Promise<void>

/** fetches https://host:port/descriptor pinned to d.tlsCert; throws MM_ERR_REACHABILITY unless it names d's identity */
export function probeHop (d: Descriptor, timeoutMs = 3000): Promise<void> {
  const fail = (why: string) => new MarshmelloError('MM_ERR_REACHABILITY', `${d.host}:${d.port} does not serve this hop (${why}); a relay is listed only where it answers with its own identity`)
  return new Promise((resolve, reject) => {
    const req = request({
      host: d.host,
      port: d.port,
      path: '/descriptor',
      method: 'GET',
      ca: [d.tlsCert],
      checkServerIdentity: (_h, cert) => {
        const fp = certificateFingerprint(cert.raw)
        return fp === d.tlsFingerprint ? undefined : new Error('certificate mismatch')
      },
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
          if (res.statusCode === 200 && got.fingerprint === d.fingerprint) resolve()
          else reject(fail('another identity answered'))
        } catch {
          reject(fail('no descriptor'))
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err) => reject(fail((err as NodeJS.ErrnoException).code ?? err.message)))
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
