// How the gateway reaches a service: one small interface, two transports. In-process
// (all services in one process) calls the services' dispatch function; split deployments
// use an undici Pool with keep-alive and add the internal token, so the caller of an
// Upstream never handles it. Also the remote checks a split gateway or messages
// service needs from auth (token revocation, user existence). Leaves out retries.

import { Pool } from 'undici'
import { MarshmelloError } from '../../../errors.js'
import { HEADER_INTERNAL, HEADER_TOKEN_EXP, HEADER_TOKEN_ID, HEADER_USER } from './http.js'
import type { Dispatch } from './router.js'

export interface UpstreamRequest {
  method: string
  /** path and query string, e.g. `/v1/rooms/lobby/messages?wait=10` */
  url: string
  headers?: Record<string, string>
  body?: Buffer
  /** default 10 s; long-polls need more than their wait (the gateway asks for 35 s) */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface UpstreamResponse {
  statusCode: number
  headers: Record<string, string>
  body: Buffer
}

export interface Upstream {
  request (req: UpstreamRequest): Promise<UpstreamResponse>
  close (): Promise<void>
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 10_000
/** a page of 200 DMs of 16 KiB is ~3.3 MB; anything past this is a broken upstream */
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024

/** Thrown when a service cannot be reached or answers garbage. */
const unavailable = (what: string) => new MarshmelloError('MM_ERR_UPSTREAM', `${what} is unavailable`)

function flatten (headers: Record<string, string | string[] | number | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v)
  }
  return out
}

/**
 * Calls the services in this process: no socket, no token (there is no boundary to
 * cross), no request objects; the gateway's headers become the call's fields.
 */
export function inProcessUpstream (dispatch: Dispatch): Upstream {
  return {
    async request (req) {
      const h = req.headers ?? {}
      const res = await dispatch({
        method: req.method,
        url: req.url,
        contentType: h['content-type'],
        body: req.body,
        user: h[HEADER_USER],
        tokenId: h[HEADER_TOKEN_ID],
        tokenExp: h[HEADER_TOKEN_EXP],
        signal: req.signal,
      })
      const headers: Record<string, string> = {}
      if (res.contentType !== undefined) headers['content-type'] = res.contentType
      return { statusCode: res.status, headers, body: res.body }
    },
    async close () {},
  }
}

export interface HttpUpstreamInit {
  /** keep-alive connections to the service; default 64 */
  connections?: number
  /** default 10 s; a request's own timeoutMs wins */
  timeoutMs?: number
}

/** Calls a service over HTTP(S) at `baseUrl` through a keep-alive undici Pool. */
export function httpUpstream (baseUrl: string, internalToken: string, init: HttpUpstreamInit = {}): Upstream {
  const pool = new Pool(baseUrl, {
    connections: init.connections ?? 64,
    keepAliveTimeout: 30_000,
    connect: { timeout: 5_000 },
  })
  const defaultTimeout = init.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS
  const name = new URL(baseUrl).host
  return {
    async request (req) {
      const timeout = req.timeoutMs ?? defaultTimeout
      try {
        const res = await pool.request({
          method: req.method as 'GET',
          path: req.url,
          headers: { ...req.headers, [HEADER_INTERNAL]: internalToken },
          body: req.body,
          signal: req.signal,
          headersTimeout: timeout,
          bodyTimeout: timeout,
        })
        const chunks: Buffer[] = []
        let size = 0
        for await (const chunk of res.body) {
          size += chunk.length
          if (size > MAX_RESPONSE_BYTES) { res.body.destroy(); throw unavailable(name) }
          chunks.push(chunk as Buffer)
        }
        return { statusCode: res.statusCode, headers: flatten(res.headers), body: Buffer.concat(chunks) }
      } catch (err) {
        if (err instanceof MarshmelloError) throw err
        const code = (err as { code?: string }).code
        if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
          /** Thrown when a service takes longer than the request's timeout. */
          throw new MarshmelloError('MM_ERR_UPSTREAM_TIMEOUT', `${name} did not answer in time`)
        }
        throw unavailable(name)
      }
    },
    async close () { await pool.close() },
  }
}

async function postJson (upstream: Upstream, url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await upstream.request({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(body)),
  })
  if (res.statusCode !== 200) throw unavailable('the auth service')
  try {
    return JSON.parse(res.body.toString('utf8'))
  } catch {
    throw unavailable('the auth service')
  }
}

/** `isRevoked` for a TokenService whose UserStore lives behind the auth service. */
export function remoteRevocationCheck (upstream: Upstream): (jti: string) => Promise<boolean> {
  return async (jti) => {
    const { revoked } = await postJson(upstream, '/internal/token-status', { jti })
    if (typeof revoked !== 'boolean') throw unavailable('the auth service')
    return revoked
  }
}
