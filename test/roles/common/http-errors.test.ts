// The one fastify error handler (src/roles/common/http-errors.ts): schema failures,
// MarshmelloErrors with their registry status, and unexpected throws masked and
// logged by code only. Driven with inject, no port.
import t from 'tap'
import Fastify from 'fastify'
import { MarshmelloError } from '../../../src/errors.js'
import { installErrorHandler, toPublicError } from '../../../src/roles/common/http-errors.js'
import type { Logger } from '../../../src/log.js'

function recordingLogger (lines: unknown[]): Logger {
  const log: Logger = {
    debug: (msg, f) => lines.push({ level: 'debug', msg, ...f }),
    info: (msg, f) => lines.push({ level: 'info', msg, ...f }),
    warn: (msg, f) => lines.push({ level: 'warn', msg, ...f }),
    error: (msg, f) => lines.push({ level: 'error', msg, ...f }),
    child: () => log,
  }
  return log
}

async function app (lines: unknown[]) {
  const a = Fastify({ logger: false })
  installErrorHandler(a, { log: recordingLogger(lines) })
  a.post('/v', { schema: { body: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] } } }, async () => ({ ok: true }))
  a.get('/taken', async () => { throw new MarshmelloError('MM_ERR_USER_EXISTS', 'username is taken') })
  a.get('/changed', async () => { throw new MarshmelloError('MM_ERR_KEY_CHANGED', 'key changed', { details: { username: 'bob', oldFingerprint: 'aa', newFingerprint: 'bb' } }) })
  a.get('/down', async () => { throw new MarshmelloError('MM_ERR_STORE_UNAVAILABLE', 'postgres at 10.0.0.5:5432 refused') })
  a.get('/boom', async () => { throw new Error('ENOENT /var/secret/profile.json password=hunter2') })
  a.get('/fastify4xx', async () => { throw Object.assign(new Error('weird framework thing'), { statusCode: 418, code: 'FST_ERR_SOMETHING' }) })
  await a.ready()
  return a
}

t.test('a schema failure is MM_ERR_VALIDATION 400 with the schema message', async t => {
  const a = await app([])
  const res = await a.inject({ method: 'POST', url: '/v', payload: { m: 1 } })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error.code, 'MM_ERR_VALIDATION')
  t.match(res.json().error.message, /required property 'n'/)
})

t.test('a MarshmelloError answers with its registry status and code', async t => {
  const a = await app([])
  const res = await a.inject({ method: 'GET', url: '/taken' })
  t.equal(res.statusCode, 409)
  t.equal(res.json().error.code, 'MM_ERR_USER_EXISTS')
  const changed = (await a.inject({ method: 'GET', url: '/changed' }))
  t.equal(changed.statusCode, 409)
  const { message, ...rest } = changed.json().error
  t.type(message, 'string')
  t.same(rest, { code: 'MM_ERR_KEY_CHANGED', username: 'bob', oldFingerprint: 'aa', newFingerprint: 'bb' }, 'public details ride along')
})

t.test('a 5xx MarshmelloError keeps its code but not its message', async t => {
  const lines: unknown[] = []
  const a = await app(lines)
  const res = await a.inject({ method: 'GET', url: '/down' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().error.code, 'MM_ERR_STORE_UNAVAILABLE')
  t.notMatch(res.body, /10\.0\.0\.5|postgres/)
  t.equal(lines.length, 1)
  t.notMatch(JSON.stringify(lines), /10\.0\.0\.5|postgres/, 'nor is the message logged')
})

t.test('an unexpected throw is a masked 500, logged by name only', async t => {
  const lines: unknown[] = []
  const a = await app(lines)
  const res = await a.inject({ method: 'GET', url: '/boom' })
  t.equal(res.statusCode, 500)
  t.equal(res.json().error.code, 'MM_ERR_INTERNAL')
  t.notMatch(res.body, /secret|hunter2|ENOENT|at /, 'no message or stack reaches the client')
  t.equal(lines.length, 1)
  t.match(lines[0], { level: 'error', method: 'GET', route: '/boom', status: 500, name: 'Error' })
  t.notMatch(JSON.stringify(lines), /secret|hunter2/, 'nor the log')
})

t.test('other framework 4xx become MM_ERR_BAD_REQUEST; unknown routes MM_ERR_NOT_FOUND; bad JSON MM_ERR_BAD_JSON', async t => {
  const lines: unknown[] = []
  const a = await app(lines)
  const odd = await a.inject({ method: 'GET', url: '/fastify4xx' })
  t.equal(odd.statusCode, 418)
  t.equal(odd.json().error.code, 'MM_ERR_BAD_REQUEST')
  t.notMatch(odd.body, /weird|FST_ERR/)
  const missing = await a.inject({ method: 'GET', url: '/nope?x=1' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().error.code, 'MM_ERR_NOT_FOUND')
  const bad = await a.inject({ method: 'POST', url: '/v', headers: { 'content-type': 'application/json' }, payload: '{"n":' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().error.code, 'MM_ERR_BAD_JSON')
  t.equal(lines.length, 0, '4xx are not logged')
})

t.test('toPublicError is what every app answers with', async t => {
  const pick = (e: unknown) => { const p = toPublicError(e); return { status: p.status, code: p.code } }
  t.same(pick(new MarshmelloError('MM_ERR_RATE', 'slow down')), { status: 429, code: 'MM_ERR_RATE' })
  t.same(pick(undefined), { status: 500, code: 'MM_ERR_INTERNAL' })
  t.same(pick(new SyntaxError('x')), { status: 400, code: 'MM_ERR_BAD_JSON' })
  t.same(pick(Object.assign(new Error('big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })), { status: 413, code: 'MM_ERR_TOO_LARGE' })
  t.same(pick(Object.assign(new Error('type'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 })), { status: 415, code: 'MM_ERR_MEDIA_TYPE' })
})
