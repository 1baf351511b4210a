// P9 at a relay process: 1,000 malformed HTTP requests of every shape against its
// HTTPS port each get a 4xx (or, for bytes that are not HTTP, a closed connection) and
// never a 5xx; frames the WebSocket itself judges (text, over its 2048-byte payload
// limit) close THAT channel with a close code; through all of it a circuit on another
// channel keeps working, and the relay keeps serving. Malformed cells and the answers
// per protocol are tested in-process (from-prev.test.ts).
import t, { type Test } from 'tap'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { connect as netConnect } from 'node:net'
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { ChannelPool } from '../../../src/roles/client/circuits/channel-pool.js'
import { Circuit } from '../../../src/roles/client/circuits/circuit.js'
import { CELL_SIZE } from '../../../src/onion/cells/constants.js'
import { healthz, sleep, startNet } from './fixture.js'

interface RawAnswer { status: number | null, closed: boolean }

/** writes raw bytes over TLS (or plain TCP) and reads the status line until the server closes */
function rawRequest (host: string, port: number, bytes: Buffer, tls = true): Promise<RawAnswer> {
  return new Promise((resolve) => {
    let data = ''
    let done = false
    const sock = tls
      ? tlsConnect({ host, port, rejectUnauthorized: false, localAddress: '127.0.0.90' } as ConnectionOptions)
      : netConnect({ host, port, localAddress: '127.0.0.90' })
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      const m = data.match(/^HTTP\/1\.[01] (\d{3})/)
      resolve({ status: m ? Number(m[1]) : null, closed })
    }
    const timer = setTimeout(() => finish(false), 5000)
    sock.on(tls ? 'secureConnect' : 'connect', () => sock.write(bytes))
    sock.on('data', (d) => { data += d.toString('latin1') })
    sock.on('error', () => finish(true))
    sock.on('close', () => finish(true))
  })
}

const req = (head: string, body: Buffer | string = ''): Buffer => Buffer.concat([Buffer.from(head.replace(/\n/g, '\r\n') + '\r\n'), Buffer.from(body)])

/** ~1,000 malformed requests; `loose` ones are valid HTTP to a real GET route with junk it may ignore (never a 5xx) */
function shapes (): { name: string, bytes: Buffer, tls?: boolean, loose?: boolean }[] {
  const out: { name: string, bytes: Buffer, tls?: boolean, loose?: boolean }[] = []
  const routes = ['/healthz', '/metrics', '/descriptor', '/consensus', '/channel']
  const close = 'Host: relay\nConnection: close\n'
  for (let round = 0; round < 12; round++) {
    for (const p of routes) {
      for (const m of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) out.push({ name: `${m} ${p}`, bytes: req(`${m} ${p} HTTP/1.1\n${close}`) })
      out.push({ name: `FOO ${p}`, bytes: req(`FOO ${p} HTTP/1.1\n${close}`) })
      out.push({ name: `bad JSON to ${p}`, bytes: req(`POST ${p} HTTP/1.1\n${close}Content-Type: application/json\nContent-Length: 9\n`, '{"a": bad') })
      out.push({ name: `JSON array to ${p}`, bytes: req(`POST ${p} HTTP/1.1\n${close}Content-Type: application/json\nContent-Length: 2\n`, '[]') })
      const big = Buffer.alloc(20_000 + round * 1000, 'a')
      out.push({ name: `oversized body to ${p}`, bytes: req(`POST ${p} HTTP/1.1\n${close}Content-Type: application/json\nContent-Length: ${big.length}\n`, big) })
      out.push({ name: `unknown content type to ${p}`, bytes: req(`POST ${p} HTTP/1.1\n${close}Content-Type: application/x-evil\nContent-Length: 3\n`, 'abc') })
      out.push({ name: `huge header on ${p}`, bytes: req(`GET ${p} HTTP/1.1\n${close}X-Big: ${'h'.repeat(20_000 + round)}\n`) })
      out.push({ name: `bad content-length on ${p}`, bytes: req(`POST ${p} HTTP/1.1\n${close}Content-Length: abc\n`) })
      out.push({ name: `CL + TE on ${p}`, bytes: req(`POST ${p} HTTP/1.1\n${close}Content-Length: 3\nTransfer-Encoding: chunked\n`, 'zz\r\n') })
      out.push({ name: `bad chunk on ${p}`, bytes: req(`POST ${p} HTTP/1.1\n${close}Content-Type: application/json\nTransfer-Encoding: chunked\n`, 'zz\r\nxx\r\n0\r\n\r\n') })
      out.push({ name: `no Host on ${p}`, bytes: req(`GET ${p} HTTP/1.1\nConnection: close\n`) })
      out.push({ name: `bad query POST ${p}`, bytes: req(`POST ${p}?%%%=&&a[b]=%E0%A4%A HTTP/1.1\n${close}Content-Length: 0\n`) })
      out.push({ name: `HTTP/1.0 POST ${p}`, bytes: req(`POST ${p} HTTP/1.0\nContent-Type: application/json\nContent-Length: 4\n`, '{"x"') })
      out.push({ name: `GET ${p} with junk query`, bytes: req(`GET ${p}?%%%=&&a[b]=%E0%A4%A&${'q'.repeat(round * 50)} HTTP/1.1\n${close}`), loose: true })
    }
    for (const p of ['/nope', '/../../etc/passwd', '/%00', '/%zz', '/healthz/x', '/channel/x', `/${'a'.repeat(8000)}`, '/v1/directory/consensus', '//healthz', '/*']) {
      out.push({ name: `GET ${p.slice(0, 40)}`, bytes: req(`GET ${p} HTTP/1.1\n${close}`) })
      out.push({ name: `HTTP/1.0 GET ${p.slice(0, 40)}`, bytes: req(`GET ${p}?a=%%% HTTP/1.0\n`) })
    }
    out.push({ name: 'non-upgrade GET /channel', bytes: req(`GET /channel HTTP/1.1\n${close}`) })
    out.push({ name: 'HTTP/1.0 GET /channel', bytes: req('GET /channel HTTP/1.0\n') })
    out.push({ name: 'upgrade with a bad key', bytes: req(`GET /channel HTTP/1.1\nHost: relay\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: nope\n`) })
    out.push({ name: 'upgrade with a bad version', bytes: req(`GET /channel HTTP/1.1\nHost: relay\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 99\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n`) })
    out.push({ name: 'garbage over TLS', bytes: randomBytes(64 + round * 100) })
    out.push({ name: 'garbage line over TLS', bytes: Buffer.from(`\u0000\u0001GET / HTTP/9.9\r\n\r\n${round}`) })
    out.push({ name: 'garbage over plain TCP', bytes: randomBytes(200), tls: false })
    out.push({ name: 'plain HTTP to the TLS port', bytes: req(`GET /healthz HTTP/1.1\n${close}`), tls: false })
  }
  return out
}

t.test('malformed input at a relay', async (t) => {
  const net = await startNet(t, ['127.0.0.11', '127.0.0.12'])
  const [d1, d2] = net.descs
  const r1 = net.relays[0]
  const channels = new ChannelPool('127.0.0.78')
  t.teardown(() => channels.close())
  const circuit = await Circuit.build({ path: [d1, d2, net.final.descriptor], channels })
  t.teardown(() => circuit.destroy())
  let n = 0
  const stillWorks = async (t: Test, what: string): Promise<void> => {
    const body = `ping ${++n}`
    const r = await circuit.request({ method: 'POST', path: '/ping', headers: {}, body: Buffer.from(body) }, { timeoutMs: 5000 })
    t.equal(r.body.toString(), body, `the circuit on another channel still works after ${what}`)
  }

  await t.test('1,000 malformed HTTP requests', async (t) => {
    const all = shapes()
    t.ok(all.length >= 1000, `${all.length} requests`)
    const bad: string[] = []
    const statuses = new Map<string, number>()
    let next = 0
    await Promise.all(Array.from({ length: 24 }, async () => {
      while (next < all.length) {
        const s = all[next++]
        const a = await rawRequest(d1.host, d1.port, s.bytes, s.tls ?? true)
        const key = a.status === null ? 'closed' : String(a.status)
        statuses.set(key, (statuses.get(key) ?? 0) + 1)
        if (a.status === null ? !a.closed : a.status >= 500 || (!s.loose && a.status < 400)) bad.push(`${s.name}: ${a.status ?? 'no answer'}`)
      }
    }))
    t.comment(`answers: ${JSON.stringify(Object.fromEntries(statuses))}`)
    t.same([...new Set(bad)], [], 'every request got a 4xx (or its connection closed), never a 5xx')
    t.equal(r1.child.exitCode, null, 'the relay process is alive')
    const h = await healthz(r1)
    t.equal(h.ok, true, '/healthz still answers')
    await stillWorks(t, 'the HTTP fuzz')
    const fresh = await Circuit.build({ path: [d1, d2, net.final.descriptor], channels: new ChannelPool('127.0.0.79') })
    t.equal((await fresh.request({ method: 'GET', path: '/fresh', headers: {}, body: Buffer.alloc(0) })).status, 200, 'a new circuit through the fuzzed relay works')
    fresh.destroy()
  })

  /** a raw WebSocket channel to R1 (TLS identity is not what is tested here) */
  const open = async (t: Test): Promise<{ ws: WebSocket, cells: Buffer[], closed: Promise<{ code: number, reason: string }> }> => {
    const ws = new WebSocket(`wss://${d1.host}:${d1.port}/channel`, { rejectUnauthorized: false, localAddress: '127.0.0.77', perMessageDeflate: false })
    t.teardown(() => ws.terminate())
    const cells: Buffer[] = []
    ws.on('message', (d) => cells.push(d as Buffer))
    ws.on('error', () => {})
    const closed = new Promise<{ code: number, reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    return { ws, cells, closed }
  }
  const within = <T>(p: Promise<T>, ms = 4000): Promise<T | 'timeout'> => Promise.race([p, sleep(ms).then(() => 'timeout' as const)])

  const closes: { name: string, send: (ws: WebSocket) => void | Promise<void>, codes: number[] }[] = [
    { name: 'a text frame', send: (ws) => ws.send('x'.repeat(CELL_SIZE)), codes: [1008] },
    { name: 'a 2049-byte frame', send: (ws) => ws.send(randomBytes(CELL_SIZE + 1)), codes: [1009] },
    { name: 'a 1 MB frame', send: (ws) => ws.send(randomBytes(1 << 20)), codes: [1009, 1006] }, // the relay stops reading mid-frame; its close frame may be lost to the reset
  ]
  for (const c of closes) {
    await t.test(`channel closed on ${c.name}`, async (t) => {
      const { ws, closed } = await open(t)
      await c.send(ws)
      const r = await within(closed)
      t.not(r, 'timeout', 'the channel was closed')
      if (r !== 'timeout') {
        t.ok(c.codes.includes(r.code), `close code ${r.code} (wanted ${c.codes.join(' or ')})`)
        // our own closes say why; 1009 comes from ws's payload limit, whose code is the reason
        if (r.code === 1008) t.ok(r.reason.length > 0, `with a reason (${r.reason})`)
      }
      await stillWorks(t, c.name)
    })
  }

  t.equal(r1.child.exitCode, null, 'the relay never crashed')
  t.equal((await healthz(r1)).ok, true)
})
