// compileRoutes as a pure function: routing, bodies, validation, serialisation by
// status and the error shape, with a small route table made for the test (the real
// services' routes are covered through the gateway in the other files here).

import t from 'tap'
import { MarshmelloError } from '../../../../src/errors.js'
import type { Logger } from '../../../../src/log.js'
import { compileRoutes, ok, type Route, type RouteRequest, type ServiceCall } from '../../../../src/roles/server/api/router.js'

const JSON_TYPE = 'application/json'
let seen: RouteRequest | undefined
const logged: { msg: string, fields: unknown }[] = []
const logger = { error: (msg: string, fields: unknown) => logged.push({ msg, fields }), warn () {}, info () {}, debug () {} } as unknown as Logger

const routes: Route[] = [
  {
    method: 'POST',
    url: '/v1/things/:name',
    schema: {
      params: { type: 'object', properties: { name: { type: 'string', pattern: '^[a-z]{1,8}$' } }, required: ['name'] },
      querystring: { type: 'object', properties: { n: { type: 'string', pattern: '^[0-9]{1,3}$' } } },
      body: {
        type: 'object',
        properties: { count: { type: 'number' }, tags: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false } },
        required: ['count'],
      },
      response: { 201: { type: 'object', properties: { name: { type: 'string' }, count: { type: 'number' } }, required: ['name', 'count'] } },
    },
    async handler (req) {
      seen = req
      const body = req.body as { count: number }
      return { status: 201, body: { name: req.params.name, count: body.count, secret: 'never serialised' } }
    },
  },
  {
    method: 'GET',
    url: '/v1/things',
    schema: { querystring: { type: 'object', properties: { n: { type: 'string' } } }, response: { '2xx': { type: 'object', properties: { n: { type: 'string' } } } } },
    async handler (req) { seen = req; return ok({ n: req.query.n ?? 'none', extra: 1 }) },
  },
  { method: 'POST', url: '/v1/gone', async handler () { return { status: 204 } } },
  { method: 'GET', url: '/v1/refuse', async handler () { throw new MarshmelloError('MM_ERR_RATE', 'slow down') } },
  { method: 'GET', url: '/v1/broken', async handler () { throw new Error('db password is hunter2') } },
  { method: 'GET', url: '/v1/down', async handler () { throw new MarshmelloError('MM_ERR_STORE_UNAVAILABLE', 'postgres at 10.0.0.5 refused') } },
]
const dispatch = compileRoutes(routes, logger)

const call = async (c: Partial<ServiceCall> & { json?: unknown }) => {
  const res = await dispatch({
    method: c.method ?? 'POST',
    url: c.url ?? '/v1/things/abc',
    contentType: c.contentType ?? (c.json !== undefined ? JSON_TYPE : undefined),
    body: c.body ?? (c.json !== undefined ? Buffer.from(JSON.stringify(c.json)) : undefined),
    signal: c.signal,
  })
  return { ...res, json: res.body.length > 0 ? JSON.parse(res.body.toString('utf8')) : undefined }
}

t.test('a good request: params, query and body reach the handler; the response schema decides what leaves', async t => {
  const res = await call({ url: '/v1/things/abc?n=7', json: { count: 3, tags: { a: 'x', b: 'dropped' } } })
  t.equal(res.status, 201)
  t.match(res.contentType, /^application\/json/)
  t.same(res.json, { name: 'abc', count: 3 }, 'fields outside the 201 schema are not serialised')
  t.same(seen?.params, { name: 'abc' })
  t.same(seen?.query, { n: '7' })
  t.same(seen?.body, { count: 3, tags: { a: 'x' } }, 'additional properties are removed where the schema forbids them (as fastify does)')
  const get = await call({ method: 'GET', url: '/v1/things?n=q', body: Buffer.from('ignored'), contentType: 'text/plain' })
  t.equal(get.status, 200)
  t.same(get.json, { n: 'q' }, 'a status class schema (2xx) applies too; a GET body is ignored')
  t.equal(seen?.body, undefined)
})

t.test('204 has no body and no type', async t => {
  const res = await call({ url: '/v1/gone' })
  t.equal(res.status, 204)
  t.equal(res.body.length, 0)
  t.equal(res.contentType, undefined)
})

t.test('refusals: each with its status and code in the API error shape', async t => {
  const cases: [string, Parameters<typeof call>[0], number, string, RegExp?][] = [
    ['unknown path', { url: '/v1/nope' }, 404, 'MM_ERR_NOT_FOUND'],
    ['wrong method', { method: 'PUT', url: '/v1/things' }, 404, 'MM_ERR_NOT_FOUND'],
    ['bad percent-encoding', { url: '/v1/things/%E0%A4%A' }, 400, 'MM_ERR_BAD_URL'],
    ['params against the schema', { url: '/v1/things/ABC', json: { count: 1 } }, 400, 'MM_ERR_VALIDATION', /^params\/name must match pattern/],
    ['missing required body field', { json: {} }, 400, 'MM_ERR_VALIDATION', /^body must have required property 'count'/],
    ['types are not coerced', { json: { count: '5' } }, 400, 'MM_ERR_VALIDATION', /^body\/count must be number/],
    ['no body where one is required', {}, 400, 'MM_ERR_VALIDATION', /^body must be object/],
    ['query against the schema', { url: '/v1/things/abc?n=1234', json: { count: 1 } }, 400, 'MM_ERR_VALIDATION', /^querystring\/n must match pattern/],
    ['a repeated query key', { url: '/v1/things/abc?n=1&n=2', json: { count: 1 } }, 400, 'MM_ERR_VALIDATION', /^querystring\/n must be string/],
    ['JSON type, empty body', { contentType: JSON_TYPE, body: Buffer.alloc(0) }, 400, 'MM_ERR_BAD_JSON'],
    ['not JSON', { contentType: JSON_TYPE, body: Buffer.from('{"count":') }, 400, 'MM_ERR_BAD_JSON'],
    ['__proto__ key', { contentType: JSON_TYPE, body: Buffer.from('{"count":1,"__proto__":{"x":1}}') }, 400, 'MM_ERR_BAD_JSON'],
    ['constructor.prototype key', { contentType: JSON_TYPE, body: Buffer.from('{"count":1,"constructor":{"prototype":{"x":1}}}') }, 400, 'MM_ERR_BAD_JSON'],
    ['a body without a type', { body: Buffer.from('{"count":1}') }, 415, 'MM_ERR_MEDIA_TYPE'],
    ['a body of another type', { contentType: 'text/plain', body: Buffer.from('{"count":1}') }, 415, 'MM_ERR_MEDIA_TYPE'],
    ['a lookalike type', { contentType: 'application/jsonx', body: Buffer.from('{"count":1}') }, 415, 'MM_ERR_MEDIA_TYPE'],
    ['a handler refusal', { method: 'GET', url: '/v1/refuse' }, 429, 'MM_ERR_RATE', /^slow down$/],
  ]
  for (const [what, c, status, code, message] of cases) {
    const res = await call(c)
    t.equal(res.status, status, `${what}: ${status}`)
    t.equal(res.json?.error?.code, code, `${what}: ${code}`)
    t.type(res.json?.error?.message, 'string', `${what}: a message`)
    if (message) t.match(res.json.error.message, message, `${what}: says what is wrong`)
  }
  const typed = await call({ contentType: 'Application/JSON; charset=utf-8', body: Buffer.from('{"count":2}') })
  t.equal(typed.status, 201, 'the JSON type is matched without case, with parameters')
})

t.test('server faults: a generic answer to the caller, the code (never the message) in the log', async t => {
  logged.length = 0
  const broken = await call({ method: 'GET', url: '/v1/broken' })
  t.equal(broken.status, 500)
  t.same(broken.json, { error: { code: 'MM_ERR_INTERNAL', message: 'internal error' } })
  const down = await call({ method: 'GET', url: '/v1/down' })
  t.equal(down.status, 503)
  t.same(down.json, { error: { code: 'MM_ERR_STORE_UNAVAILABLE', message: 'service unavailable, try again' } })
  t.equal(logged.length, 2)
  t.notMatch(JSON.stringify(logged), /hunter2|10\.0\.0\.5/, 'error messages stay out of the log')
  t.match(JSON.stringify(logged), /MM_ERR_STORE_UNAVAILABLE/)
})

t.test('the caller\'s signal reaches the handler; without one it never aborts', async t => {
  const gone = new AbortController()
  await call({ method: 'GET', url: '/v1/things', signal: gone.signal })
  t.equal(seen?.signal, gone.signal)
  await call({ method: 'GET', url: '/v1/things' })
  t.equal(seen?.signal.aborted, false)
})
