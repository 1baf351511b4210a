// The web UI end to end: a real network (server + 3 relays), two `chat --web`
// processes (alice and bob), driven in headless Chromium: sign-up, a live room
// message, DMs both ways (verified), the circuit drawn with 4 hops, markup shown as
// text; and the local API's refusals (token, Origin, Host, form posts).
import t from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ROOM_HTML_PATTERN, USERNAME_HTML_PATTERN } from '../../../../src/names.js'
import { ROOT, run, tmp, type Proc } from '../../../helpers/net.js'
import { startSmallNet, type SmallNet } from './net.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic']
const PASSWORD = 'correct horse battery'

interface WebUi { proc: Proc, url: string, port: number, token: string }

async function startWebUi (dir: string, home: string): Promise<WebUi> {
  const proc = run(['chat', '--web', '--devnet', dir, '--home', home])
  const m = await proc.waitFor(/web UI on (http:\/\/127\.0\.0\.1:(\d+)\/#token=([A-Za-z0-9_-]{43}))\n/)
  return { proc, url: m[1], port: Number(m[2]), token: m[3] }
}

/** a raw HTTP request, so tests can send the Host and Origin a browser would not */
function raw (port: number, o: { method?: string, path: string, headers?: Record<string, string>, body?: string }): Promise<{ status: number, headers: Record<string, unknown>, json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, headers: { host: `127.0.0.1:${port}`, ...o.headers } }, (res) => {
      let text = ''
      res.on('data', (d) => { text += d })
      res.on('end', () => {
        let json: any
        try { json = JSON.parse(text) } catch { json = null }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json })
      })
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

let net: SmallNet
const uis: WebUi[] = []
let browser: Browser | undefined

t.before(async () => { net = await startSmallNet(3) })
t.teardown(async () => {
  await browser?.close().catch(() => {})
  await Promise.all(uis.map((u) => u.proc.kill('SIGTERM')))
  await net?.stop()
})

t.test('web UI', async (t) => {
  const alice = await startWebUi(net.dir, tmp('mm-web-alice-'))
  const bob = await startWebUi(net.dir, tmp('mm-web-bob-'))
  uis.push(alice, bob)

  t.test('the local API refuses what is not its own page', async (t) => {
    const token = { 'x-marshmello-token': alice.token }
    const ok = await raw(alice.port, { path: '/api/session', headers: token })
    t.equal(ok.status, 200, 'with the token and the right Host')
    t.equal(ok.json.loggedIn, false)

    const noToken = await raw(alice.port, { path: '/api/session' })
    t.equal(noToken.status, 403, 'no token')
    t.equal(noToken.json.error.code, 'MM_ERR_WEB_TOKEN')
    const wrong = await raw(alice.port, { path: '/api/session', headers: { 'x-marshmello-token': bob.token } })
    t.equal(wrong.status, 403, 'another run\'s token')

    const evilOrigin = await raw(alice.port, { path: '/api/session', headers: { ...token, origin: 'http://evil.example' } })
    t.equal(evilOrigin.status, 403, 'foreign Origin')
    t.equal(evilOrigin.json.error.code, 'MM_ERR_WEB_ORIGIN')
    const ownOrigin = await raw(alice.port, { path: '/api/session', headers: { ...token, origin: `http://127.0.0.1:${alice.port}` } })
    t.equal(ownOrigin.status, 200, 'its own Origin')

    const rebound = await raw(alice.port, { path: '/api/session', headers: { ...token, host: `evil.example:${alice.port}` } })
    t.equal(rebound.status, 403, 'Host evil.example (DNS rebinding)')
    t.equal(rebound.json.error.code, 'MM_ERR_WEB_HOST')
    const pageRebound = await raw(alice.port, { path: '/', headers: { host: `evil.example:${alice.port}` } })
    t.equal(pageRebound.status, 403, 'the page also checks Host')

    const form = await raw(alice.port, { method: 'POST', path: '/api/login', headers: { ...token, 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=alice&password=x' })
    t.ok(form.status === 403 || form.status === 415, `form-encoded POST refused (${form.status})`)
    const plain = await raw(alice.port, { method: 'POST', path: '/api/login', headers: { ...token, 'content-type': 'text/plain' }, body: '{"username":"alice","password":"x"}' })
    t.ok(plain.status === 403 || plain.status === 415, `text/plain POST refused (${plain.status})`)

    const bad = await raw(alice.port, { method: 'POST', path: '/api/rooms/lobby/messages', headers: { ...token, 'content-type': 'application/json' }, body: '{"text":' })
    t.equal(bad.status, 400, 'malformed JSON is a 400, not a crash')
    t.ok(bad.json.error.code, 'with a code')

    const page = await raw(alice.port, { path: '/' })
    t.equal(page.status, 200, 'the page itself needs no token')
    t.match(page.headers['content-security-policy'], /default-src 'self'; script-src 'self'.*frame-ancestors 'none'/)
    t.equal(page.headers['x-content-type-options'], 'nosniff')
    t.equal(page.headers['referrer-policy'], 'no-referrer')
    t.equal(page.headers['cache-control'], 'no-store')
  })

  const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (scripts/ensure-chromium.sh installs it as root with apt-get)`
  if (skip) t.comment(`web UI browser test skipped: ${skip}`)
  t.test('in Chromium: sign up, rooms, DMs, circuit, markup as text', { skip }, async (t) => {
    // launch() runs Chromium with a fresh temporary --user-data-dir of its own
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
    const open = async (ui: WebUi): Promise<Page> => {
      const ctx = await browser!.newContext({ viewport: { width: 1240, height: 720 } })
      const page = await ctx.newPage()
      page.on('pageerror', (e) => t.fail(`page error: ${e.message}`))
      await page.goto(ui.url)
      return page
    }
    const pa = await open(alice)
    const pb = await open(bob)
    t.equal(await pa.evaluate(() => location.hash), '', 'the token left the address bar')

    // the name inputs follow the shared name rules (src/names.ts)
    const valid = (page: Page, sel: string) => page.$eval(sel, (e) => (e as HTMLInputElement).checkValidity())
    t.equal(await pa.getAttribute('#auth-user', 'pattern'), USERNAME_HTML_PATTERN, 'the username input takes the username rule')
    await pa.fill('#auth-user', 'ab')
    t.equal(await valid(pa, '#auth-user'), false, 'a 2-character username is refused in the page, as the server would')
    await pa.fill('#auth-user', 'Alice_01')
    t.equal(await valid(pa, '#auth-user'), true, 'a mixed-case one is taken')

    const signUp = async (page: Page, user: string) => {
      await page.click('#tab-signup')
      await page.fill('#auth-user', user)
      await page.fill('#auth-pass', PASSWORD)
      await page.click('#auth-submit')
      await page.waitForSelector('#screen-chat:not([hidden])', { timeout: 30_000 })
    }
    await Promise.all([signUp(pa, 'alice'), signUp(pb, 'bob')])
    t.equal(await pa.textContent('#who'), 'signed in as alice')

    const send = async (page: Page, text: string) => {
      await page.fill('#send-text', text)
      await page.press('#send-text', 'Enter')
    }
    const seen = (page: Page, text: string, cls = '') => page.locator(`#messages .msg${cls} .text`, { hasText: text }).first().waitFor({ timeout: 30_000 })

    // a room message reaches bob's open page live (long-poll through the onion)
    await send(pa, 'hello from alice over three hops')
    await seen(pb, 'hello from alice over three hops')
    t.pass('bob\'s page shows alice\'s room message live')

    // markup is text, never HTML
    const xss1 = '<script>window.__pwned=1</script>'
    const xss2 = '<img src=x onerror="window.__pwned=2">'
    await send(pa, xss1)
    await send(pa, xss2)
    await seen(pb, xss2)
    for (const page of [pa, pb]) {
      const texts = await page.locator('#messages .msg .text').allTextContents()
      t.ok(texts.includes(xss1) && texts.includes(xss2), 'both shown literally')
      t.equal(await page.locator('#messages img').count(), 0, 'no <img> element was made')
      t.equal(await page.evaluate(() => (window as any).__pwned), undefined, 'window.__pwned stays undefined')
    }

    // the circuit: You → 3 relays → server
    await pa.locator('#circuit-path .hop.node').nth(3).waitFor({ timeout: 20_000 })
    t.equal(await pa.locator('#circuit-path .hop.node').count(), 4, '4 hops drawn')
    t.equal(await pa.locator('#circuit-path .hop.you').count(), 1, 'starting from You')
    t.equal(await pa.locator('#circuit-path .hop.server').count(), 1, 'ending at the server')
    t.match(await pa.locator('#circuit-path .hop.node .fp').first().textContent(), /^[0-9a-f]{8}$/, 'with fingerprint prefixes')

    // DMs both ways, decrypted and verified
    await pa.fill('#dm-name', 'bob')
    await pa.press('#dm-name', 'Enter')
    await pa.locator('#conv-meta .fingerprint').waitFor({ timeout: 20_000 })
    t.match(await pa.textContent('#conv-meta'), /key fingerprint [0-9a-f ]+…/, 'bob\'s key fingerprint is shown')
    await send(pa, 'psst bob, end to end')
    await pb.locator('#dm-list button[data-name="alice"]').click({ timeout: 30_000 })
    await seen(pb, 'psst bob, end to end', '.verified')
    t.pass('bob reads alice\'s DM, verified')
    await send(pb, 'got it, alice')
    await seen(pa, 'got it, alice', '.verified')
    t.pass('alice reads bob\'s reply live, verified')
    t.equal(await pa.locator('#messages .msg.unverified').count(), 0, 'nothing unverified')
    t.equal(await pa.isVisible('#key-banner'), false, 'no key-change banner for a first-seen key')

    // the chat screen for the README
    await pa.locator('#room-list button[data-name="lobby"]').click()
    await seen(pa, 'hello from alice over three hops')
    await pb.locator('#room-list button[data-name="lobby"]').click()
    await send(pb, 'hi alice! this came through relay, relay, relay, server')
    await seen(pa, 'hi alice! this came through relay, relay, relay, server')
    // the README's screenshot is refreshed on request only (MM_UPDATE_SCREENSHOT=1), so a test run leaves the tree clean
    if (process.env.MM_UPDATE_SCREENSHOT) mkdirSync(join(ROOT, 'docs', 'screenshots'), { recursive: true })
    const shot = await pa.screenshot({ path: process.env.MM_UPDATE_SCREENSHOT ? join(ROOT, 'docs', 'screenshots', 'web-ui.png') : undefined })
    t.ok(shot.length > 10_000, 'the chat screen renders')

    // joining a room: the room rule in the page, the lowercase name on the server
    t.equal(await pa.getAttribute('#join-name', 'pattern'), ROOM_HTML_PATTERN, 'the join input takes the room rule')
    await pa.fill('#join-name', 'bad room!')
    t.equal(await valid(pa, '#join-name'), false, 'a room name with a space is refused in the page')
    await pa.fill('#join-name', 'Second-Room')
    await pa.press('#join-name', 'Enter')
    await pa.locator('#room-list button.active[data-name="second-room"]').waitFor({ timeout: 20_000 })
    t.equal(await pa.textContent('#conv-title'), '#second-room', 'the joined room opens under its stored, lowercase name')
  })

  t.test('SIGTERM logs out and exits 0', async (t) => {
    for (const ui of [alice, bob]) t.equal(await ui.proc.kill('SIGTERM'), 0)
  })
})
