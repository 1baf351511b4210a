// The services' request pipeline without an HTTP framework: a table of routes (method,
// path pattern, JSON schemas, handler) compiled once into one dispatch function. It does
// for these routes what fastify did: routing (find-my-way), the query string
// (fast-querystring), JSON bodies (secure-json-parse, application/json only), schema
// validation (ajv with fastify's defaults, types not coerced), response serialisation by
// status (fast-json-stringify), and the API's error shape. The gateway calls it in-process
// (no request/response objects to fake); a service running apart serves the same
// function over HTTP (service-app.ts). Leaves out HEAD routes, cookies and headers.

import { Ajv, type ValidateFunction } from 'ajv'
import FindMyWay from 'find-my-way'
import fastJson from 'fast-json-stringify'
import { parse as parseQuery } from 'fast-querystring'
import sjson from 'secure-json-parse'
import { MarshmelloError } from '../../../errors.js'
import { silentLogger, type Logger } from '../../../log.js'
import { JSON_TYPE, errorReply, type BytesCall, type BytesReply } from './http.js'

/** One request to a service, as the gateway forwards it. */
export interface ServiceCall extends BytesCall {
  /** the signed-in user the gateway vouches for, and that token's id and expiry (ms) */
  user?: string
  tokenId?: string
  tokenExp?: string
}

export type ServiceReply = BytesReply

export type Dispatch = (call: ServiceCall) => Promise<ServiceReply>

/** What a handler sees: validated params, query and body (typed by the route's schemas). */
export interface RouteRequest {
  params: Record<string, string>
  query: Record<string, string | undefined>
  body: unknown
  call: ServiceCall
  signal: AbortSignal
}

/** A handler's answer: the status and the value its response schema serialises. */
export interface Answer { status: number, body?: unknown }

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** find-my-way pattern, e.g. `/v1/rooms/:room/messages` */
  url: string
  schema?: {
    params?: object
    querystring?: object
    body?: object
    /** by status code ('200', '201') or class ('2xx'); error bodies always have the error shape */
    response?: Record<string, object>
  }
  handler (req: RouteRequest): Promise<Answer>
}

export const ok = (body: unknown): Answer => ({ status: 200, body })

interface Compiled {
  route: Route
  params?: ValidateFunction
  query?: ValidateFunction
  body?: ValidateFunction
  serializers: Map<string, (value: unknown) => string>
}

const NEVER = new AbortController().signal
const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'DELETE'])
const JSON_MIME = /^application\/json\s*(;|$)/i

/** Thrown when a request's body or query does not match the route's schema. */
const invalid = (where: string, v: ValidateFunction) => {
  const e = v.errors?.[0]
  const message = e === undefined ? `${where} is invalid` : `${where}${e.instancePath} ${e.message ?? 'is invalid'}`
  return new MarshmelloError('MM_ERR_VALIDATION', message.slice(0, 300))
}
/** Thrown when a body is not JSON, or JSON with __proto__ or constructor keys. */
const badJson = () => new MarshmelloError('MM_ERR_BAD_JSON', 'request body is not valid JSON')
/** Thrown when a body comes with another content type than JSON. */
const badMediaType = () => new MarshmelloError('MM_ERR_MEDIA_TYPE', 'send application/json')
/** Thrown when a path cannot be percent-decoded. */
const badUrl = () => new MarshmelloError('MM_ERR_BAD_URL', 'malformed URL')

const NOT_FOUND = Buffer.from(JSON.stringify({ error: { code: 'MM_ERR_NOT_FOUND', message: 'no such route' } }))

/**
 * Compiles `routes` (schemas once, up front) into one function that answers a call.
 * Never throws: errors become `{ error: { code, message } }`, and 5xx are logged by code.
 */
export function compileRoutes (routes: Route[], logger: Logger = silentLogger): Dispatch {
  // fastify's defaults (@fastify/ajv-compiler), except that types are checked, not coerced
  const ajv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: true, allErrors: false, addUsedSchema: false })
  const router = FindMyWay({ onBadUrl: () => {} })
  for (const route of routes) {
    const s = route.schema ?? {}
    const compiled: Compiled = {
      route,
      params: s.params && ajv.compile(s.params),
      query: s.querystring && ajv.compile(s.querystring),
      body: s.body && ajv.compile(s.body),
      serializers: new Map(Object.entries(s.response ?? {}).map(([code, schema]) => [code, fastJson(schema)])),
    }
    router.on(route.method, route.url, () => {}, compiled)
  }

  async function run (call: ServiceCall): Promise<ServiceReply> {
    const q = call.url.indexOf('?')
    const path = q === -1 ? call.url : call.url.slice(0, q)
    const found = router.find(call.method as 'GET', path)
    if (found === null) return { status: 404, contentType: JSON_TYPE, body: NOT_FOUND }
    if (found.store === null || found.store === undefined) throw badUrl()
    const c = found.store as Compiled

    const params = { ...found.params } as Record<string, string>
    if (c.params && !c.params(params)) throw invalid('params', c.params)
    let body: unknown
    if (METHODS_WITH_BODY.has(call.method)) body = parseBody(call)
    if (c.body && !c.body(body)) throw invalid('body', c.body)
    const query = (q === -1 ? {} : { ...parseQuery(call.url.slice(q + 1)) }) as Record<string, string>
    if (c.query && !c.query(query)) throw invalid('querystring', c.query)

    const answer = await c.route.handler({ params, query, body, call, signal: call.signal ?? NEVER })
    if (answer.status === 204) return { status: 204, body: Buffer.alloc(0) }
    const serialize = c.serializers.get(String(answer.status)) ?? c.serializers.get(`${String(answer.status)[0]}xx`) ?? JSON.stringify
    return { status: answer.status, contentType: JSON_TYPE, body: Buffer.from(serialize(answer.body)) }
  }

  return async function dispatch (call) {
    try {
      return await run(call)
    } catch (err) {
      return errorReply(err, logger, call.method)
    }
  }
}

/** the JSON body, undefined when there is none; as fastify: no type and no body is fine, a body needs JSON */
function parseBody (call: ServiceCall): unknown {
  const raw = call.body
  const type = call.contentType
  if (raw === undefined || raw.length === 0) {
    if (type !== undefined && JSON_MIME.test(type)) throw badJson()
    return undefined
  }
  if (type === undefined || !JSON_MIME.test(type)) throw badMediaType()
  try {
    return sjson.parse(raw.toString('utf8'), undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch {
    throw badJson()
  }
}
