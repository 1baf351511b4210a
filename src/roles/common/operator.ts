// The operator path to a role's exact counters (docs/PROTOCOL.md §8): a random token in
// a 0600 file of the role's data dir (`operator.token`, made at first start, or the file
// an operator names), which `/metrics` demands as `Authorization: Bearer <token>`
// (compared in constant time). Public endpoints say up or down and nothing countable:
// exact live counts let anyone who polls them see which relays carry a circuit.
import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import type { FastifyRequest } from 'fastify'
import { MarshmelloError } from '../../errors.js'
import { secretMatcher } from '../../onion/crypto/fingerprints.js'
import { randomBase64url } from '../../onion/crypto/random.js'
import { certificateFingerprint } from '../../onion/crypto/certificate.js'

export const OPERATOR_TOKEN_FILE = 'operator.token'
const TOKEN = /^[A-Za-z0-9_-]{32,256}$/

/** the default place of a role's operator token */
export const operatorTokenPath = (dataDir: string): string => join(dataDir, OPERATOR_TOKEN_FILE)

/**
 * Reads the operator token at `path`, or makes one there (32 random bytes, base64url,
 * mode 0600). Created whole or not at all (written aside, then hard-linked into place),
 * so processes sharing a data dir all end up with the first one's token.
 */
export function loadOrCreateOperatorToken (path: string): string {
  if (!existsSync(path)) {
    const aside = `${path}.new-${process.pid}`
    writeFileSync(aside, randomBase64url(32) + '\n', { mode: 0o600 })
    try {
      linkSync(aside, path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      unlinkSync(aside)
    }
  }
  const token = readFileSync(path, 'utf8').trim()
  if (!TOKEN.test(token)) throw new MarshmelloError('MM_ERR_CONFIG', `expected an operator token of 32-256 characters [A-Za-z0-9_-] in ${path}`)
  return token
}

/** Reads a role's operator token from its data dir (the devnet, tests and the bench). */
export function readOperatorToken (dataDir: string): string {
  return readFileSync(operatorTokenPath(dataDir), 'utf8').trim()
}

/** a fastify onRequest hook: the request must carry the operator token */
export function operatorOnly (token: string): (request: FastifyRequest) => Promise<void> {
  const matches = secretMatcher(token)
  return async function checkOperatorToken (request) {
    const m = /^Bearer (\S{1,512})$/.exec(request.headers.authorization ?? '')
    if (m === null || !matches(m[1])) {
      /** Thrown when /metrics is called without the operator token, or with a wrong one. */
      throw new MarshmelloError('MM_ERR_OPERATOR_TOKEN', 'this endpoint needs the operator token (Authorization: Bearer, from the role\'s operator.token file)')
    }
  }
}

/** what an operator tool needs to read a role's counters: the token and the role's own TLS certificate */
export interface OperatorCredentials { token: string, certPem: string }

/** the operator token and the TLS certificate (`tls.crt`) from a role's data dir */
export function readOperatorCredentials (dataDir: string): OperatorCredentials {
  return { token: readOperatorToken(dataDir), certPem: readFileSync(join(dataDir, 'tls.crt'), 'utf8') }
}

const MAX_BODY = 64 * 1024

/**
 * GET `url` (a role's /metrics) with the operator token, over TLS pinned to the role's
 * own self-signed certificate (the only trust anchor, and its SHA-256 must match): the
 * token is never sent to anything else. The JSON object, or null when it does not answer 200.
 */
export async function fetchOperatorJson (url: string, creds: OperatorCredentials): Promise<Record<string, unknown> | null> {
  const pinned = certificateFingerprint(creds.certPem)
  const agent = new Agent({
    connect: {
      ca: [creds.certPem],
      timeout: 5000,
      minVersion: 'TLSv1.3',
      maxCachedSessions: 0,
      // the certificate is the pinned anchor; its name is irrelevant, its hash is not
      checkServerIdentity: (_host, cert) => certificateFingerprint(cert.raw) === pinned ? undefined : new Error('certificate does not match the role\'s own'),
    },
  })
  try {
    const res = await request(url, { dispatcher: agent, headers: { authorization: `Bearer ${creds.token}` }, headersTimeout: 5000, bodyTimeout: 5000 })
    const parts: Buffer[] = []
    let n = 0
    for await (const chunk of res.body) {
      n += chunk.length
      if (n > MAX_BODY) { res.body.destroy(); return null }
      parts.push(Buffer.from(chunk))
    }
    if (res.statusCode !== 200) return null
    const v: unknown = JSON.parse(Buffer.concat(parts).toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : null
  } catch {
    return null
  } finally {
    void agent.close()
  }
}
