// The adversarial server (issue 16, P12): a real devnet (server and relays as processes)
// whose server writes down everything its final hop sees of each request (circuit id,
// JWT subject, path, body fields: --trace-requests), and whose data directory is read
// afterwards. After a scripted alice ⇄ bob conversation of sealed DMs (a stranger's first
// message paid with an anonymous token, then replies with delivery tokens), no record,
// no circuit and no stored row links alice to bob, no stored DM names its sender, and no
// token spent joins the issuance of one account on any value. Timing is the one join this
// leaves open (docs/ARCHITECTURE.md P12): both accounts fetch tokens at login, long before they spend them.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { tmp } from '../../helpers/net.js'
import { startNetwork } from '../../helpers/network.js'
import { openClient } from '../../../src/roles/client/setup.js'
import type { SeenRequest } from '../../../src/roles/server/index.js'

const NAMES = ['alice', 'bob']

/** every string inside a JSON value (keys too) */
function strings (v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v)
  else if (Array.isArray(v)) for (const x of v) strings(x, out)
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) { out.push(k); strings(x, out) }
  return out
}

/** the usernames a record names: its JWT subject, a register/login name, path segments, body values */
function named (r: SeenRequest): Set<string> {
  const words = [r.sub ?? '', ...r.path.split('/'), ...strings(r.body)]
  return new Set(NAMES.filter((n) => words.includes(n)))
}

/** the bytes a base64 or base64url string decodes to, when it is one (long enough to matter) */
function bytesOf (s: string): Buffer | undefined {
  if (s.length < 24 || !/^[A-Za-z0-9+/_=-]+$/.test(s)) return undefined
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
}

/** whether two byte strings share any 8-byte run */
function shareRun (a: Buffer, b: Buffer, n = 8): boolean {
  const seen = new Set<string>()
  for (let i = 0; i + n <= a.length; i++) seen.add(a.subarray(i, i + n).toString('hex'))
  for (let i = 0; i + n <= b.length; i++) if (seen.has(b.subarray(i, i + n).toString('hex'))) return true
  return false
}

t.test('the server learns neither the content nor the sender of a DM', async (t) => {
  const trace = join(tmp('mm-trace-'), 'requests.jsonl')
  const net = await startNetwork({ relays: 3, serverArgs: ['--relay-stale', '30', '--trace-requests', trace] })
  let stopped = false
  t.teardown(async () => { if (!stopped) await net.stop() })
  const alice = await openClient({ home: tmp('mm-alice-'), devnet: net.dir, rotate: 600, verbose: false })
  const bob = await openClient({ home: tmp('mm-bob-'), devnet: net.dir, rotate: 600, verbose: false })
  t.teardown(async () => { await alice.circuits.close(); await bob.circuits.close() })

  await alice.register('alice', 'alice-password')
  await alice.login('alice', 'alice-password')
  await bob.register('bob', 'bob-password')
  await bob.login('bob', 'bob-password')
  // a first message to a stranger (an anonymous token), answered and answered again (delivery tokens)
  await alice.sendDm('bob', 'hi bob, secret plan A')
  t.same((await bob.readDms()).messages.map((m) => [m.from, m.text]), [['alice', 'hi bob, secret plan A']])
  await bob.sendDm('alice', 'hi alice, plan B')
  t.same((await alice.readDms()).messages.map((m) => [m.from, m.text]), [['alice', 'hi bob, secret plan A'], ['bob', 'hi alice, plan B']])
  await alice.sendDm('bob', 'plan C then')
  t.same((await bob.readDms()).messages.map((m) => m.text), ['hi bob, secret plan A', 'hi alice, plan B', 'plan C then'], 'each side keeps its conversation')
  await alice.readDms()
  await alice.circuits.close()
  await bob.circuits.close()
  stopped = true
  await net.stop()

  const records = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SeenRequest)
  const sealed = records.filter((r) => r.path === '/v1/dms/sealed')
  t.equal(sealed.length, 3, 'three sealed sends seen')
  t.ok(records.every((r) => typeof r.circuit === 'string'), 'every request came on a circuit')

  // per record and per circuit: no identity together with the other party's name
  const byCircuit = new Map<string, { who: Set<string>, named: Set<string> }>()
  for (const r of records) {
    const c = byCircuit.get(r.circuit!) ?? { who: new Set(), named: new Set() }
    byCircuit.set(r.circuit!, c)
    if (r.sub !== undefined) c.who.add(r.sub)
    if (r.path === '/v1/auth/login' || r.path === '/v1/auth/register') c.who.add((r.body as { username: string }).username)
    for (const n of named(r)) c.named.add(n)
    t.notOk(named(r).size > 1, `${r.method} ${r.path} names one party at most`)
  }
  for (const [, c] of byCircuit) {
    const links = [...c.who].flatMap((w) => [...c.named].filter((n) => n !== w).map((n) => `${w}→${n}`))
    t.same(links, [], 'no circuit ties an account to the other party')
  }
  for (const r of sealed) {
    t.equal(r.sub, undefined, 'a sealed send carries no JWT')
    t.same([...byCircuit.get(r.circuit!)!.who], [], 'and its circuit carried no identified request')
    t.same([...named(r)], [(r.body as { to: string }).to], 'and names its recipient only')
  }
  const all = JSON.stringify(records)
  for (const secret of ['secret plan A', 'plan B', 'plan C']) t.notOk(all.includes(secret), `"${secret}" never seen in clear`)

  // tokens: issued to an account on its circuit, spent anonymously; join every value of
  // every spend with every value of every issuance: nothing singles out one account
  const issuance = records.filter((r) => r.path === '/v1/dms/tokens')
  t.same([...new Set(issuance.map((r) => r.sub))].sort(), ['alice', 'bob'], 'both accounts fetched tokens')
  const spends = sealed.filter((r) => (r.body as { anonToken?: string }).anonToken !== undefined)
  t.equal(spends.length, 1, 'one message paid with an anonymous token (the first, to a stranger)')
  for (const s of spends) {
    const token = Buffer.from((s.body as { anonToken: string }).anonToken, 'base64url')
    const values = strings(s.body)
    const joined = new Set<string>()
    for (const i of issuance) {
      const theirs = strings(i.body)
      if (i.circuit === s.circuit) joined.add(i.sub!)
      if (theirs.some((v) => values.includes(v))) joined.add(i.sub!)
      if (theirs.map(bytesOf).some((b) => b !== undefined && shareRun(b, token))) joined.add(i.sub!)
    }
    t.same([...joined], [], 'the spent token joins no issuance: not on a value, a byte run or a circuit')
  }

  // the stored rows: DMs name their recipient only; no row holds both names
  const dataDir = net.server.dataDir
  const rows = readFileSync(join(dataDir, 'messages.db'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  const dms = rows.filter((d) => d.to !== undefined)
  t.ok(dms.length >= 3, 'the message store saw the three DMs')
  for (const d of dms) {
    t.equal(d.from, '', 'no stored DM names its sender')
    t.ok(d.sentAt % 3600_000 === 0, 'and its time is the hour it arrived')
    t.notOk(JSON.stringify(d).includes(d.to === 'bob' ? 'alice' : 'bob'), 'nor mentions the other party')
  }
  const db = new Database(join(dataDir, 'users.db'), { readonly: true })
  t.teardown(() => db.close())
  for (const table of (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((x) => x.name)) {
    for (const row of db.prepare(`SELECT * FROM "${table}"`).all()) {
      // names as whole values (a base64 key may contain "bob" by chance)
      const values = Object.values(row as Record<string, unknown>)
      t.notOk(NAMES.every((n) => values.includes(n)), `no row of ${table} holds both names`)
    }
  }
})
