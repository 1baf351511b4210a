import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { call, rawKey, signUp, stack } from './helpers.js'
import { randomBytes } from 'node:crypto'
import { PAD_BUCKETS } from '../../../../src/onion/sealed/padding.js'
import { SEALED_OVERHEAD } from '../../../../src/onion/sealed/sealed-envelope.js'

// P9: bad input never crashes a process; every malformed request gets a 4xx with a
// clear JSON error. Each endpoint gets broken JSON, wrong types, missing fields, a
// 1 MiB body and Unicode edge cases; the app must keep serving afterwards.

const WEIRD_STRINGS = [
  '', '\ud800', 'a\udc00b', '\udbff\udfff', '\u202eevil\u202c', '\u200fRTL', 'nul\u0000byte', '\u0000',
  '😀👩‍👩‍👧‍👦', '\ufeffbom', 'e\u0301\u0301\u0301', 'x'.repeat(4000), '😀'.repeat(4000), 'x'.repeat(4001),
  '<script>alert(1)</script>', "'; DROP TABLE users; --", '../../etc/passwd', '%00', 'a'.repeat(70000),
]
const WRONG_TYPES = [null, 0, -1, 1e308, true, [], ['a'], {}, { $gt: '' }]
const RAW_BODIES: Array<string | Buffer> = [
  '', '{', '{"a":}', '}', 'null', '[]', '"str"', '123', 'true', '\u0000', '{"a":1,}', "{'a':1}",
  '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}',
  Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), Buffer.from([0xc3, 0x28]), '{"a":"\\ud800"}', '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}',
]

interface Endpoint { method: string, url: string, valid: Record<string, unknown> }

function bodies (valid: Record<string, unknown>): unknown[] {
  const out: unknown[] = [{}, { ...valid, extra: 'field' }]
  for (const key of Object.keys(valid)) {
    const { [key]: _dropped, ...missing } = valid
    out.push(missing)
    for (const v of [...WRONG_TYPES, ...WEIRD_STRINGS]) out.push({ ...valid, [key]: v })
  }
  return out
}

async function hammer (t: Test, app: FastifyInstance, eps: Endpoint[], opts: { token?: string, headers?: Record<string, string> }) {
  const statuses = new Map<number, number>()
  const check = async (label: string, p: Promise<{ status: number, json: any, raw: string }>) => {
    const res = await p
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    if (res.status >= 500 || res.status < 200) t.fail(`${label} -> ${res.status} ${res.raw.slice(0, 200)}`)
    if (res.status >= 400 && !label.startsWith('HEAD') && typeof res.json?.error?.code !== 'string') t.fail(`${label} -> ${res.status} without a JSON error: ${res.raw.slice(0, 100)}`)
  }
  let n = 0
  for (const ep of eps) {
    for (const fuzzed of bodies(ep.valid)) {
      // a fresh clientId, so that valid odd texts are really stored rather than refused as reuse;
      // a fresh login name, so the per-name login throttle (login-throttle.test.ts) adds no waits here
      let body = (fuzzed as any).clientId === ep.valid.clientId ? { ...(fuzzed as object), clientId: `fz-${n}` } : fuzzed
      if (ep.url === '/v1/auth/login' && (body as any).username === ep.valid.username) body = { ...(body as object), username: `fuzz${n}` }
      const label = `${ep.method} ${ep.url} ${JSON.stringify(body).slice(0, 60)}`
      const res = call(app, ep.method, ep.url, { ...opts, body })
      await check(label, res)
      const { status, json } = await res
      const sentText = (body as any).text ?? (body as any).body
      if (status === 201 && typeof sentText === 'string') {
        t.equal(json.message.body, sentText, `round trip: ${label}`)
        t.notOk(/[\ud800-\udfff]/u.test(sentText), 'lone surrogates are never stored')
      }
      n++
    }
    for (const raw of RAW_BODIES) {
      await check(`${ep.method} ${ep.url} raw ${String(raw).slice(0, 30)}`, call(app, ep.method, ep.url, { ...opts, body: raw }))
      n++
    }
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x']) {
      await check(`${ep.method} ${ep.url} as ${type}`, call(app, ep.method, ep.url, { ...opts, body: JSON.stringify(ep.valid), headers: { ...opts.headers, 'content-type': type } }))
      n++
    }
    const huge = await call(app, ep.method, ep.url, { ...opts, body: JSON.stringify({ ...ep.valid, pad: 'x'.repeat(1024 * 1024) }) })
    t.equal(huge.status, 413, `${ep.method} ${ep.url} 1 MiB`)
    t.equal(huge.json?.error.code, 'MM_ERR_TOO_LARGE')
  }
  const gets = ['/v1/rooms/lobby/messages', '/v1/dms', '/v1/users/alice/keys']
  const queries = ['?limit=0', '?limit=99999', '?limit=1e3', '?wait=-1', '?wait=0', '?after=', '?after=%ff', '?after=%00', '?after=' + 'a'.repeat(100),
    '?limit=1&limit=2', '?__proto__[x]=1', '?after[]=a', '?%zz', '?' + 'a=1&'.repeat(2000)]
  for (const path of gets) {
    for (const q of queries) { await check(`GET ${path}${q}`, call(app, 'GET', path + q, opts)); n++ }
  }
  for (const url of ['/v1/rooms/%ff/messages', '/v1/rooms/%/messages', '/v1/users/%00/keys', '/v1/users/' + 'a'.repeat(5000) + '/keys',
    '/v1/rooms/\u202e/messages', '/v1//rooms', '/%2e%2e/internal/token-status', '/v1/auth/register?x=%', '/']) {
    await check(`GET ${url}`, call(app, 'GET', url, opts))
    n++
  }
  for (const method of ['DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
    await check(`${method} /v1/dms`, call(app, method, '/v1/dms', opts))
    n++
  }
  t.pass(`${n} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
}

const endpoints = (): Endpoint[] => [
  { method: 'POST', url: '/v1/auth/register', valid: { username: 'fuzzy', password: 'password123', keys: { enc: rawKey(), sign: rawKey() } } },
  { method: 'POST', url: '/v1/auth/login', valid: { username: 'alice', password: 'password123' } },
  { method: 'PUT', url: '/v1/users/me/keys', valid: { enc: rawKey(), sign: rawKey() } },
  { method: 'POST', url: '/v1/rooms/lobby/messages', valid: { clientId: 'fuzz-1', text: 'hello' } },
  { method: 'POST', url: '/v1/dms/sealed', valid: { to: 'bob', envelope: randomBytes(SEALED_OVERHEAD + PAD_BUCKETS[0]).toString('base64url'), deliveryToken: randomBytes(16).toString('base64url') } },
  { method: 'POST', url: '/v1/auth/logout', valid: {} },
]

t.test('fuzz every endpoint through the gateway and on the services', async t => {
  const { gateway, service, internalToken } = await stack(t)
  const alice = await signUp(gateway, 'alice', 'password123')
  await signUp(gateway, 'bob', 'password123')
  const spare = (await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'alice', password: 'password123' } })).json.token

  await hammer(t, gateway, endpoints().filter(e => e.url !== '/v1/auth/logout'), { token: alice })
  await hammer(t, service, endpoints(), { headers: { 'x-marshmello-internal': internalToken, 'x-marshmello-user': 'alice', 'x-marshmello-token-id': 'fuzzjti', 'x-marshmello-token-exp': String(Date.now() + 60_000) } })
  await hammer(t, gateway, endpoints().filter(e => e.url === '/v1/auth/logout'), { token: alice })

  // still serving, with the stores intact
  const token = (await call(gateway, 'POST', '/v1/auth/login', { body: { username: 'bob', password: 'password123' } })).json.token
  t.type(token, 'string', 'login still works')
  const sent = await call(gateway, 'POST', '/v1/rooms/lobby/messages', { token, body: { clientId: 'after-fuzz', text: 'still here' } })
  t.equal(sent.status, 201)
  const page = await call(gateway, 'GET', '/v1/rooms/lobby/messages?limit=200', { token })
  t.equal(page.status, 200)
  t.ok(page.json.messages.some((m: any) => m.body === 'still here'))
  for (const m of page.json.messages) t.ok(typeof m.body === 'string' && m.body.length <= 4000 * 2, 'stored texts are bounded')
  t.equal((await call(gateway, 'GET', '/v1/dms', { token: alice })).status, 401, 'the first well-formed logout revoked this token')
  t.equal((await call(gateway, 'GET', '/v1/dms', { token: spare })).status, 200, 'and only this one')
})
