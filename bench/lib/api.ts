// The two ways the bench talks to the chat API: through a circuit (request
// envelopes over the onion) and directly to --direct-api with an undici Pool
// (keep-alive). Both expose the same `call(method, path, body?, token?)`.
import { Pool } from 'undici'
import { ChannelPool } from '../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../src/roles/client/circuits/circuit.js'
import type { Descriptor } from '../../src/onion/directory/descriptor.js'

export interface ApiResult { status: number, json: any }

export interface ApiClient {
  call (method: string, path: string, body?: unknown, token?: string): Promise<ApiResult>
  close (): Promise<void>
}

const headersFor = (body: unknown, token?: string): Record<string, string> => {
  const h: Record<string, string> = {}
  if (body !== undefined) h['content-type'] = 'application/json'
  if (token) h.authorization = `Bearer ${token}`
  return h
}

const parse = (status: number, text: string): ApiResult => {
  let json: any
  try { json = text ? JSON.parse(text) : null } catch { json = text }
  return { status, json }
}

export function circuitClient (circuit: Circuit): ApiClient & { circuit: Circuit } {
  return {
    circuit,
    async call (method, path, body, token) {
      const res = await circuit.request({ method, path, headers: headersFor(body, token), body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)) })
      return parse(res.status, res.body.toString())
    },
    async close () { circuit.destroy() },
  }
}

export async function buildCircuit (path: Descriptor[], channels: ChannelPool): Promise<Circuit> {
  return Circuit.build({ path, channels, timeoutMs: 30_000 })
}

export function directClient (baseUrl: string, connections = 8): ApiClient {
  const pool = new Pool(baseUrl, { connections, pipelining: 1, keepAliveTimeout: 30_000 })
  return {
    async call (method, path, body, token) {
      const res = await pool.request({ method: method as any, path, headers: headersFor(body, token), body: body === undefined ? undefined : JSON.stringify(body) })
      return parse(res.statusCode, await res.body.text())
    },
    async close () { await pool.close() },
  }
}

/** registers (or reuses) a user and logs in; returns the bearer token */
export async function loginAs (api: ApiClient, username: string, password = 'bench-password-123'): Promise<string> {
  const r = await api.call('POST', '/v1/auth/register', { username, password })
  if (r.status >= 300 && r.status !== 409) throw new Error(`register ${username}: HTTP ${r.status} ${JSON.stringify(r.json)}`)
  const l = await api.call('POST', '/v1/auth/login', { username, password })
  if (l.status !== 200 || !l.json?.token) throw new Error(`login ${username}: HTTP ${l.status} ${JSON.stringify(l.json)}`)
  return l.json.token
}

let seq = 0
/** a ~200-byte room send body (the text pads the JSON to about 200 bytes) */
export function sendBody (tag: string): { clientId: string, text: string } {
  const clientId = `b-${tag}-${process.pid}-${++seq}`
  return { clientId, text: 'x'.repeat(Math.max(1, 200 - 30 - clientId.length)) }
}

export async function send (api: ApiClient, token: string, tag: string, room = 'lobby'): Promise<ApiResult> {
  const r = await api.call('POST', `/v1/rooms/${room}/messages`, sendBody(tag), token)
  if (r.status !== 200 && r.status !== 201) throw new Error(`send: HTTP ${r.status} ${JSON.stringify(r.json)}`)
  return r
}
