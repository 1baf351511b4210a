// The web UI end to end: a real network (server + 3 relays), `chat --web` processes
// (alice, bob, and carol for failed sign-ups), driven in headless Chromium at desktop
// (1280×800) and phone (390×844) sizes: every view (login, sign-up, network settings,
// chat, the key-change banner) scanned with axe-core (no serious or critical
// violation), with no sideways overflow and the send and trust buttons on screen;
// sign-up, a live room message, DMs both ways (verified), the circuit drawn with 4
// hops, markup shown as text; focus in the composer after login, Shift+Enter for a
// new line, the message limit before sending, a reload keeping the session, a link
// opened again in the tab, joined rooms kept across logins, a failed sign-up leaving
// no profile; messages typed while every relay is down all arrive once when they are
// back; and the local API's refusals (token, Origin, Host, form posts).
import t, { type Test } from 'tap'
import { AxeBuilder } from '@axe-core/playwright'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { ROOM_HTML_PATTERN, USERNAME_HTML_PATTERN } from '../../../../src/names.js'
import { generateIdentity, publicKeys } from '../../../../src/roles/client/e2e/keys.js'
import { openClient } from '../../../../src/roles/client/setup.js'
import { ROOT, run, tmp, type Proc } from '../../../helpers/net.js'
import { startSmallNet, type SmallNet } from './net.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic']
const PASSWORD = 'correct horse battery'
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const SHOTS = process.env.MM_UPDATE_SCREENSHOT ? join(ROOT, 'docs', 'screenshots') : null

interface WebUi { proc: Proc, url: string, port: number, token: string, home: string }

async function startWebUi (dir: string, home: string): Promise<WebUi> {
  const proc = run(['chat', '--web', '--devnet', dir, '--home', home])
  const m = await proc.waitFor(/web UI on (http:\/\/127\.0\.0\.1:(\d+)\/#token=([A-Za-z0-9_-]{43}))\n/)
  return { proc, url: m[1], port: Number(m[2]), token: m[3], home }
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

const api = (ui: WebUi, method: string, path: string, body?: unknown) =>
  raw(ui.port, { method, path, headers: { 'x-marshmello-token': ui.token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) })

/** axe-core over the page as it is: no serious or critical violation */
async function axe (t: Test, page: Page, what: string): Promise<void> {
  const r = await new AxeBuilder({ page }).analyze()
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  t.same(bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`), [], `${what}: no serious or critical axe violation`)
}

/** no sideways scrolling, and each of `selectors` wholly inside the viewport */
async function fits (t: Test, page: Page, what: string, selectors: string[] = []): Promise<void> {
  const o = await page.evaluate(() => ({ sw: document.scrollingElement!.scrollWidth, iw: innerWidth }))
  t.ok(o.sw <= o.iw, `${what}: no horizontal overflow (scrollWidth ${o.sw} <= innerWidth ${o.iw})`)
  const vp = page.viewportSize()!
  for (const sel of selectors) {
    const b = await page.locator(sel).boundingBox()
    t.ok(b && b.x >= 0 && b.y >= 0 && b.x + b.width <= vp.width && b.y + b.height <= vp.height, `${what}: ${sel} inside the viewport (${JSON.stringify(b)})`)
  }
}

/** every view checked at both sizes */
async function checkView (t: Test, pages: Page[], what: string, selectors: string[] = []): Promise<void> {
  for (const page of pages) {
    const size = page.viewportSize()!.width === PHONE.width ? 'phone' : 'desktop'
    await axe(t, page, `${what} (${size})`)
    await fits(t, page, `${what} (${size})`, selectors)
  }
}

const activeId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? null)

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

  t.test('a failed sign-up leaves no profile behind', async (t) => {
    const carol = await startWebUi(net.dir, tmp('mm-web-carol-'))
    uis.push(carol)
    const short = await api(carol, 'POST', '/api/signup', { username: 'carol', password: 'seven77' })
    t.equal(short.status, 400, 'a 7-character password is refused')
    t.equal(short.json.error.code, 'MM_ERR_PASSWORD')
    t.match(short.json.error.message, /at least 8 characters/, 'in plain words')
    t.notOk(existsSync(join(carol.home, 'profiles', 'carol')), 'and nothing was written')
    // bob's name, taken below by bob's own UI first
    const first = await api(bob, 'POST', '/api/signup', { username: 'bob', password: PASSWORD })
    t.equal(first.status, 200, 'bob signs up in his UI')
    const taken = await api(carol, 'POST', '/api/signup', { username: 'bob', password: PASSWORD })
    t.equal(taken.json.error.code, 'MM_ERR_USER_EXISTS', 'the name is taken')
    t.notOk(existsSync(join(carol.home, 'profiles', 'bob')), 'the profile this attempt made is gone again')
    const good = await api(carol, 'POST', '/api/signup', { username: 'carol', password: PASSWORD })
    t.equal(good.status, 200, 'a good password then works')
    t.ok(existsSync(join(carol.home, 'profiles', 'carol', 'identity.json')), 'and writes the profile')
    t.equal(await carol.proc.kill('SIGTERM'), 0)
  })

  const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (scripts/ensure-chromium.sh installs it as root with apt-get)`
  if (skip) t.comment(`web UI browser test skipped: ${skip}`)
  t.test('in Chromium at desktop and phone sizes', { skip }, async (t) => {
    // launch() runs Chromium with a fresh temporary --user-data-dir of its own
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
    const contexts: BrowserContext[] = []
    const open = async (ui: WebUi, viewport = DESKTOP): Promise<Page> => {
      const ctx = await browser!.newContext({ viewport, isMobile: viewport === PHONE, hasTouch: viewport === PHONE })
      contexts.push(ctx)
      const page = await ctx.newPage()
      page.on('pageerror', (e) => t.fail(`page error: ${e.message}`))
      await page.goto(ui.url)
      return page
    }
    const pa = await open(alice)
    const phone = await open(alice, PHONE)
    const pb = await open(bob)
    t.equal(await pa.evaluate(() => location.hash), '', 'the token left the address bar')

    // the login and sign-up card, and the network settings, before anyone signs in
    await pa.waitForSelector('#screen-login:not([hidden])')
    await phone.waitForSelector('#screen-login:not([hidden])')
    t.equal(await activeId(pa), 'auth-user', 'the login card opens with the focus in the username field')
    t.equal(await pa.getAttribute('#tab-login', 'aria-selected'), 'true', 'Log in is the selected tab')
    t.equal(await pa.getAttribute('#tab-signup', 'aria-selected'), 'false')
    await checkView(t, [pa, phone], 'login', ['#auth-submit'])
    await pa.focus('#tab-login')
    await pa.keyboard.press('ArrowRight')
    t.equal(await pa.getAttribute('#tab-signup', 'aria-selected'), 'true', 'the arrow key selects Sign up')
    t.equal(await activeId(pa), 'tab-signup', 'and moves the focus to it')
    t.equal(await pa.getAttribute('#auth-panel', 'aria-labelledby'), 'tab-signup', 'the panel is labelled by the selected tab')
    await phone.click('#tab-signup')
    t.ok(await pa.isVisible('#auth-pass2'), 'sign-up asks for the password twice')
    t.match(await pa.textContent('#auth-pass-rule'), /at least 8 characters/, 'and states the rule')
    await checkView(t, [pa, phone], 'sign-up', ['#auth-submit'])
    for (const p of [pa, phone]) { await p.click('#nav-network'); await p.waitForSelector('#screen-network:not([hidden])') }
    await checkView(t, [pa, phone], 'network settings')
    if (SHOTS) mkdirSync(SHOTS, { recursive: true })
    for (const p of [pa, phone]) { await p.click('#net-back'); await p.waitForSelector('#screen-login:not([hidden])') }

    // the name inputs follow the shared name rules (src/names.ts)
    const valid = (page: Page, sel: string) => page.$eval(sel, (e) => (e as HTMLInputElement).checkValidity())
    t.equal(await pa.getAttribute('#auth-user', 'pattern'), USERNAME_HTML_PATTERN, 'the username input takes the username rule')
    await pa.fill('#auth-user', 'ab')
    t.equal(await valid(pa, '#auth-user'), false, 'a 2-character username is refused in the page, as the server would')
    await pa.fill('#auth-user', 'Alice_01')
    t.equal(await valid(pa, '#auth-user'), true, 'a mixed-case one is taken')

    await pa.click('#tab-signup')
    await pa.fill('#auth-user', 'alice')
    await pa.fill('#auth-pass', PASSWORD)
    await pa.fill('#auth-pass2', PASSWORD + 'x')
    await pa.click('#auth-submit')
    t.match(await pa.textContent('#auth-error'), /differ/, 'two different passwords are refused in the page')
    await pa.fill('#auth-pass', 'short')
    await pa.fill('#auth-pass2', 'short')
    await pa.click('#auth-submit')
    t.match(await pa.textContent('#auth-error'), /at least 8 characters/, 'a short one too, in plain words')
    t.notOk(existsSync(join(alice.home, 'profiles', 'alice')), 'nothing written')
    await pa.fill('#auth-pass', PASSWORD)
    await pa.fill('#auth-pass2', PASSWORD)
    await pa.click('#auth-submit')
    await pa.waitForSelector('#screen-chat:not([hidden])', { timeout: 30_000 })
    t.equal(await pa.textContent('#who'), 'signed in as alice')
    t.equal(await activeId(pa), 'send-text', 'after sign-up the focus is in the composer')
    // bob signed up through the API above, so his page opened on the chat screen
    await pb.waitForSelector('#screen-chat:not([hidden])', { timeout: 30_000 })
    t.equal(await activeId(pb), 'send-text', 'a page opening on the chat has the focus in the composer')
    // the phone page of the same UI follows on a reload
    await phone.reload()
    await phone.waitForSelector('#screen-chat:not([hidden])', { timeout: 30_000 })

    const send = async (page: Page, text: string) => {
      await page.fill('#send-text', text)
      await page.press('#send-text', 'Enter')
    }
    const seen = (page: Page, text: string, cls = '') => page.locator(`#messages .msg${cls}:not(.pending) .text`, { hasText: text }).first().waitFor({ timeout: 30_000 })

    // a room message reaches bob's open page live (long-poll through the onion)
    await send(pa, 'hello from alice over three hops')
    await seen(pb, 'hello from alice over three hops')
    t.pass('bob\'s page shows alice\'s room message live')
    t.equal(await activeId(pa), 'send-text', 'the focus stays in the composer after sending')
    // the list of the server's rooms, empty at sign-in, is fetched again once a room has a message
    await pa.locator('#all-rooms button[data-name="lobby"]').waitFor({ timeout: 10_000 })
    await pb.locator('#all-rooms button[data-name="lobby"]').waitFor({ timeout: 10_000 })
    t.pass('both pages list #lobby among the rooms on the server, sent and received alike')

    // Shift+Enter is a new line; Enter sends the whole text
    await pb.click('#send-text')
    await pb.keyboard.type('line one')
    await pb.keyboard.press('Shift+Enter')
    await pb.keyboard.type('line two')
    t.equal(await pb.inputValue('#send-text'), 'line one\nline two', 'Shift+Enter made a new line, nothing sent')
    await pb.keyboard.press('Enter')
    await seen(pa, 'line two')
    t.ok((await pa.locator('#messages .msg .text').allTextContents()).includes('line one\nline two'), 'the two lines arrive as one message')
    t.equal(await pb.inputValue('#send-text'), '', 'the composer is empty again')

    // the one message limit, before anything is sent, and the text is kept
    const long = 'x'.repeat(10_000)
    await pa.fill('#send-text', long)
    await pa.press('#send-text', 'Enter')
    t.match(await pa.textContent('#notice'), /10,000 characters; the limit is 4,000/, 'a 10,000-character message is refused in plain words')
    t.equal((await pa.inputValue('#send-text')).length, 10_000, 'and stays in the composer')
    t.match(await pa.textContent('#send-hint'), /limit is 4,000/, 'the composer says so too')
    const viaApi = await api(alice, 'POST', '/api/rooms/lobby/messages', { text: long })
    t.equal(viaApi.json.error.code, 'MM_ERR_BAD_TEXT', 'the local API refuses it as well, before the network')
    await pa.fill('#send-text', '')
    t.equal(await pa.isVisible('#notice'), false, 'the warning goes once the text fits')

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
    await phone.locator('#circuit-path .hop.node').nth(3).waitFor({ timeout: 20_000 })
    const bar = await phone.locator('#circuit').boundingBox()
    t.ok(bar && bar.height <= 40, `the phone's circuit bar is one compact line (${bar?.height} px high)`)
    const last = await phone.locator('#circuit-path .hop.server').boundingBox()
    const rebuild = await phone.locator('#circuit-new').boundingBox()
    t.ok(last && rebuild && last.x + last.width <= rebuild.x, `the whole path fits beside the button (${last?.x}+${last?.width} <= ${rebuild?.x})`)

    // the unread count in the title, for a room the reader is not looking at
    await pb.fill('#join-name', 'side')
    await pb.press('#join-name', 'Enter')
    await pb.locator('#room-list button.active[data-name="side"]').waitFor({ timeout: 20_000 })
    await pa.fill('#join-name', 'side')
    await pa.press('#join-name', 'Enter')
    await pa.locator('#room-list button.active[data-name="side"]').waitFor({ timeout: 20_000 })
    t.equal(await activeId(pa), 'send-text', 'opening a room puts the focus in the composer')
    await pa.locator('#room-list button[data-name="lobby"]').click()
    t.equal(await activeId(pa), 'send-text', 'so does switching back')
    // notifications, once turned on: who and where, never the text
    t.equal(await pa.textContent('#nav-notify'), 'Notifications off', 'notifications are off until asked for')
    await pa.context().grantPermissions(['notifications'], { origin: `http://127.0.0.1:${alice.port}` })
    await pa.evaluate(() => {
      const shown: unknown[] = (window as any).__notified = []
      const Real = window.Notification
      ;(window as any).Notification = class extends Real {
        constructor (title: string, o?: NotificationOptions) { shown.push([title, o?.body]); super(title, o) }
      }
    })
    await pa.click('#nav-notify')
    await pa.locator('#nav-notify[aria-pressed="true"]').waitFor()
    t.equal(await pa.textContent('#nav-notify'), 'Notifications on')
    await send(pb, 'psst, in #side')
    await pa.locator('#room-list button[data-name="side"] .badge').waitFor({ timeout: 30_000 })
    t.equal(await pa.evaluate(() => document.visibilityState), 'visible', 'alice\'s tab is in view')
    t.equal(await pa.title(), '(1) Marshmello', 'the title counts the unread message')
    t.same(await pa.evaluate(() => (window as any).__notified), [['bob in #side', 'New message in Marshmello']], 'one notification, naming who and where but not the text')
    await pa.locator('#room-list button[data-name="side"]').click()
    await seen(pa, 'psst, in #side')
    t.equal(await pa.title(), 'Marshmello', 'reading it clears the count')

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
    // the safety number (PROTOCOL §11.4): the same 60 digits on both sides; alice marks bob verified
    const number = (await pa.textContent('#safety-number'))?.trim() ?? ''
    t.match(number, /^([0-9]{5} ){11}[0-9]{5}$/, 'a 60-digit safety number in groups of five')
    t.equal((await pb.textContent('#safety-number'))?.trim(), number, 'bob sees the same number')
    await pa.click('#verify-btn')
    await pa.locator('#safety-state', { hasText: '✓ verified' }).waitFor({ timeout: 20_000 })
    t.match(await pa.textContent('#safety-state'), /✓ verified/, 'marked verified')
    t.match(await pa.locator('#messages .msg .time').first().getAttribute('title'), /\d{2}:\d{2}:\d{2} \S+/, 'a message time names its zone on hover')

    // the chat screen at both sizes
    await pa.locator('#room-list button[data-name="lobby"]').click()
    await seen(pa, 'hello from alice over three hops')
    await pb.locator('#room-list button[data-name="lobby"]').click()
    await send(pb, 'hi alice! this came through relay, relay, relay, server')
    await seen(pa, 'hi alice! this came through relay, relay, relay, server')
    await seen(phone, 'hi alice! this came through relay, relay, relay, server')
    await checkView(t, [pa, phone], 'chat', ['#send-btn', '#send-text'])
    // the README's screenshots are refreshed on request only (MM_UPDATE_SCREENSHOT=1), so a test run leaves the tree clean
    const shot = await pa.screenshot({ path: SHOTS ? join(SHOTS, 'web-ui.png') : undefined })
    t.ok(shot.length > 10_000, 'the chat screen renders')
    if (SHOTS) await phone.screenshot({ path: join(SHOTS, 'web-ui-phone.png') })
    // on the phone the conversations are a panel behind "Rooms"
    t.equal(await phone.isVisible('#sidebar'), false, 'the phone shows the conversation, not the sidebar')
    await phone.click('#nav-rooms')
    t.ok(await phone.isVisible('#sidebar'), '"Rooms" opens the sidebar')
    await checkView(t, [phone], 'chat with the sidebar open')
    if (SHOTS) await phone.screenshot({ path: join(SHOTS, 'web-ui-phone-rooms.png') })
    await phone.locator('#room-list button[data-name="side"]').click()
    t.equal(await phone.isVisible('#sidebar'), false, 'choosing a room closes it')
    t.equal(await phone.textContent('#conv-title'), '#side')

    // joining a room: the room rule in the page, the lowercase name on the server
    t.equal(await pa.getAttribute('#join-name', 'pattern'), ROOM_HTML_PATTERN, 'the join input takes the room rule')
    await pa.fill('#join-name', 'bad room!')
    t.equal(await valid(pa, '#join-name'), false, 'a room name with a space is refused in the page')
    await pa.fill('#join-name', 'Second-Room')
    await pa.press('#join-name', 'Enter')
    await pa.locator('#room-list button.active[data-name="second-room"]').waitFor({ timeout: 20_000 })
    t.equal(await pa.textContent('#conv-title'), '#second-room', 'the joined room opens under its stored, lowercase name')

    // a reload keeps the session (the token in this tab's sessionStorage)
    await pa.reload()
    await pa.waitForSelector('#screen-chat:not([hidden])', { timeout: 30_000 })
    t.equal(await pa.textContent('#who'), 'signed in as alice', 'a reload keeps the session')
    t.equal(await pa.isVisible('#notice'), false, 'with no "no valid access token" notice')
    t.equal(await activeId(pa), 'send-text', 'and the focus in the composer')
    // a tab without the token, then the printed link pasted into it: only the fragment changes
    const bare = await (await browser.newContext({ viewport: DESKTOP })).newPage()
    await bare.goto(`http://127.0.0.1:${alice.port}/`)
    await bare.locator('#notice', { hasText: 'no valid access token' }).waitFor()
    await bare.goto(alice.url)
    await bare.waitForSelector('#screen-chat:not([hidden])', { timeout: 30_000 })
    t.equal(await bare.isVisible('#notice'), false, 'the link opened in the same tab is read (hashchange)')
    t.equal(await bare.evaluate(() => location.hash), '', 'and leaves the address bar again')
    await bare.context().close()

    // joined rooms are kept across logins (in the profile)
    await pa.click('#nav-logout')
    await pa.waitForSelector('#screen-login:not([hidden])')
    await pa.fill('#auth-user', 'alice')
    await pa.fill('#auth-pass', PASSWORD)
    await pa.click('#auth-submit')
    await pa.waitForSelector('#screen-chat:not([hidden])', { timeout: 30_000 })
    t.equal(await activeId(pa), 'send-text', 'after login the focus is in the composer')
    t.same(await pa.locator('#room-list button').evaluateAll((bs) => bs.map((b) => (b as HTMLElement).dataset.name)), ['lobby', 'side', 'second-room'], 'the joined rooms came back')
    t.same(JSON.parse(readFileSync(join(alice.home, 'profiles', 'alice', 'chat.json'), 'utf8')).rooms, ['lobby', 'side', 'second-room'], 'kept in the profile, in the chat.json the terminal chat keeps them in')

    // older history on scroll: 110 messages; the UI caches the newest page (50), the rest
    // comes from the server a page at a time (GET …?before=) when scrolled to the top
    for (let i = 1; i <= 110; i++) t.equal((await api(bob, 'POST', '/api/rooms/history/messages', { text: `history ${i}` })).status, 201)
    await pa.fill('#join-name', 'history')
    await pa.press('#join-name', 'Enter')
    await seen(pa, 'history 110')
    t.equal(await pa.locator('#messages .msg').count(), 50, 'the newest 50 are shown')
    t.ok(await pa.isVisible('#messages .older button'), 'with a way to load older ones')
    for (const want of [100, 110]) {
      await pa.locator('#messages').evaluate((el) => { el.scrollTop = 0 })
      // wait for the older page itself ('history 1' as text would also match 'history 11'…, already shown)
      await pa.waitForFunction((n) => document.querySelectorAll('#messages .msg').length >= n, want, { timeout: 30_000 }).catch(() => {})
      t.equal(await pa.locator('#messages .msg').count(), want, `scrolling to the top loaded an older page from the server (${want} shown)`)
    }
    t.same(await pa.locator('#messages .msg .text').evaluateAll((ns) => ns.map((n) => n.textContent)), Array.from({ length: 110 }, (_, i) => `history ${i + 1}`), 'every message once, oldest first')
    t.equal(await pa.locator('#messages .older').count(), 0, 'and nothing older is left')

    // the rooms on the server: listed with their message counts, one click joins
    t.equal((await api(bob, 'POST', '/api/rooms/listed-only/messages', { text: 'found in the list' })).status, 201)
    await pa.click('#all-rooms-more')
    const listed = pa.locator('#all-rooms button[data-name="listed-only"]')
    await listed.waitFor({ timeout: 30_000 })
    t.match(await pa.locator('#all-rooms button[data-name="history"]').textContent(), /#history\s*110 msgs/, 'each room with its message count')
    t.match(await listed.textContent(), /#listed-only\s*1 msg$/)
    t.notOk((await pa.textContent('#all-rooms'))?.includes('bob'), 'no member or sender is listed')
    await listed.click()
    await seen(pa, 'found in the list')
    t.equal(await pa.textContent('#conv-title'), '#listed-only', 'clicking a listed room opens it')
    t.ok((await pa.locator('#room-list button').evaluateAll((bs) => bs.map((b) => (b as HTMLElement).dataset.name))).includes('listed-only'), 'and joins it')
    await checkView(t, [pa], 'chat with the room list')

    // bob's key changes on the server (a new device): alice's DM view raises the banner
    const other = await openClient({ home: tmp('mm-web-bob2-'), devnet: net.dir, rotate: 600, verbose: false })
    try {
      const { data } = await other.call('POST', '/v1/auth/login', { username: 'bob', password: PASSWORD }, { auth: false })
      const put = await other.circuits.request({ method: 'PUT', path: '/v1/users/me/keys', headers: { 'content-type': 'application/json', authorization: `Bearer ${data.token}` }, body: Buffer.from(JSON.stringify(publicKeys(generateIdentity()))) })
      t.equal(put.status, 200, 'bob\'s keys replaced on the server')
    } finally {
      await other.circuits.close()
    }
    for (const p of [pa, phone]) {
      if (p === phone) await phone.click('#nav-rooms')
      await p.locator('#dm-list button[data-name="bob"]').click({ timeout: 30_000 })
      await p.locator('#key-banner:not([hidden])').waitFor({ timeout: 30_000 })
    }
    t.match(await pa.textContent('#key-banner-title'), /bob's key has changed/)
    await checkView(t, [pa, phone], 'key-change banner', ['#trust-btn'])
    await fits(t, phone, 'key-change banner (phone)', ['#send-btn'])
    if (SHOTS) await phone.screenshot({ path: join(SHOTS, 'web-ui-phone-key-changed.png') })

    // every relay down: three messages typed meanwhile are queued, then all arrive once
    await pa.locator('#room-list button[data-name="lobby"]').click()
    await pb.locator('#room-list button[data-name="lobby"]').click()
    // every text the notice line shows from now on
    await pa.evaluate(() => {
      const n = document.getElementById('notice')!
      const seenTexts: string[] = (window as any).__notices = []
      new MutationObserver(() => { if (!n.hidden) seenTexts.push(n.textContent ?? '') }).observe(n, { childList: true, characterData: true, subtree: true, attributes: true })
    })
    await net.relaysDown()
    const queued = ['queued one', 'queued two', 'queued three']
    for (const text of queued) await send(pa, text)
    await pa.locator('#messages .msg.pending').nth(2).waitFor({ timeout: 10_000 })
    t.equal(await pa.locator('#messages .msg.pending').count(), 3, 'shown as pending while the network is down')
    await pa.locator('#notice', { hasText: 'Offline — reconnecting' }).waitFor({ timeout: 60_000 })
    t.pass('one "offline — reconnecting" line')
    t.match(await pa.locator('#messages .msg.pending .state').first().textContent(), /Waiting for the network|Sending/)
    await net.relaysUp()
    for (const text of queued) await seen(pb, text)
    await pa.locator('#messages .msg.pending').first().waitFor({ state: 'detached', timeout: 60_000 })
    t.equal(await pa.locator('#messages .msg.pending, #messages .msg.failed').count(), 0, 'nothing left pending on alice\'s page')
    const stored = (await api(bob, 'GET', '/api/rooms/lobby/messages')).json.messages.map((m: { text: string }) => m.text)
    for (const text of queued) t.equal(stored.filter((s: string) => s === text).length, 1, `"${text}" stored exactly once`)
    t.same(stored.filter((s: string) => queued.includes(s)), queued, 'in the order typed')
    // runs of one text are one showing of it
    const notices: string[] = (await pa.evaluate(() => (window as any).__notices as string[])).filter((n, i, all) => n !== all[i - 1])
    const offline = notices.filter((n) => n.startsWith('Offline'))
    t.same(offline.length, 1, `one "offline — reconnecting" line, not a flood (${JSON.stringify(notices)})`)
    t.ok(notices.includes('Reconnected.'), 'and a "reconnected" line')

    for (const c of contexts) await c.close()
  })

  t.test('SIGTERM logs out and exits 0', async (t) => {
    for (const ui of [alice, bob]) t.equal(await ui.proc.kill('SIGTERM'), 0)
  })
})
