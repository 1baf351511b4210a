// End to end through real processes: a server and three relays on their own
// loopback addresses, clients driven through the CLI (`register`, `send`, `read`).
// Room messages and DMs go through circuits; P8: the server's data dir holds the
// room text but no byte of the DM plaintext; P1: alice's source address
// (127.0.0.77) reaches the entry relay, and never the server (its peer trace,
// its output, its files).
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { run, tmp } from '../../helpers/net.js'
import { startNetwork } from '../../helpers/network.js'

const ALICE_IP = '127.0.0.77'
const PASSWORD = 'correct horse battery staple'

/** every file under `dir`, recursively */
function files (dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : [p]
  })
}

/** the files under `dir` whose bytes contain any of `needles` */
function filesContaining (dir: string, needles: Buffer[]): string[] {
  return files(dir).filter((f) => {
    const bytes = readFileSync(f)
    return needles.some((n) => bytes.includes(n))
  })
}

/** text in UTF-8, UTF-16LE, hex, and base64 at each of the three alignments (the stable middle) */
function encodings (text: string): Buffer[] {
  const out = [Buffer.from(text, 'utf8'), Buffer.from(text, 'utf16le'), Buffer.from(Buffer.from(text).toString('hex'))]
  for (const pad of ['', 'x', 'xx']) {
    const b64 = Buffer.from(pad + text).toString('base64')
    out.push(Buffer.from(b64.slice(4, -4)), Buffer.from(Buffer.from(pad + text).toString('base64url').slice(4, -4)))
  }
  return out
}

t.test('register, room messages and DMs through circuits; P8 and P1 at the server', async (t) => {
  const dir = tmp('mm-e2e-')
  const peersFile = join(dir, 'server-peers.txt')
  const traces = [1, 2, 3].map((i) => join(dir, `relay-${i}.trace`))
  const net = await startNetwork({ relays: 3, dir, serverArgs: ['--trace-peers', peersFile], relayArgs: (i) => ['--trace', traces[i - 1]] })
  t.teardown(() => net.stop())

  const cli = async (home: string, args: string[], local?: string) => {
    const p = run([...args, '--devnet', net.dir, '--home', home, ...(local ? ['--local-address', local] : [])], { env: { MARSHMELLO_PASSWORD: PASSWORD } })
    const code = await p.exited
    t.equal(code, 0, `${args.slice(0, 3).join(' ')} exits 0`, { stderr: p.stderr() })
    return p.stdout()
  }
  const homeA = tmp('mm-home-a-')
  const homeB = tmp('mm-home-b-')

  const roomText = `room hello ${Date.now()} — shared in the lobby`
  const dmText = `dm secret ${Math.random().toString(36).slice(2)} only bob may read`

  const [regA, regB] = await Promise.all([
    cli(homeA, ['register', '--user', 'alice'], ALICE_IP),
    cli(homeB, ['register', '--user', 'bob']),
  ])
  t.match(regA, /registered alice/)
  t.match(regB, /registered bob/)

  t.match(await cli(homeA, ['send', '--user', 'alice', '--room', 'lobby', roomText], ALICE_IP), /^sent \S+/)
  t.match(await cli(homeA, ['send', '--user', 'alice', '--to', 'bob', dmText], ALICE_IP), /^sent \S+/)

  // one after the other: a profile is signed in by one process at a time (profile.lock)
  const room = await cli(homeB, ['read', '--user', 'bob', '--room', 'lobby', '--json'])
  const dms = await cli(homeB, ['read', '--user', 'bob', '--dms', '--json'])
  const roomMsgs = room.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  t.match(roomMsgs, [{ from: 'alice', room: 'lobby', text: roomText }], 'bob reads alice\'s room message')
  const dmMsgs = dms.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  t.match(dmMsgs, [{ from: 'alice', to: 'bob', text: dmText, verified: true }], 'bob reads the DM, decrypted and verified')

  const { fetchOperatorJson, readOperatorCredentials } = await import('../../../src/roles/common/operator.js')
  const counts = await fetchOperatorJson(`${net.server.url}/metrics`, readOperatorCredentials(net.server.dataDir))
  t.ok(Number(counts?.requestsServed) >= 6, 'the requests reached the server through its final hop (operator counters)')
  t.equal(counts?.relays, 3)

  // stop the server so every store is flushed to disk, then read its files
  await net.stop()

  t.test('P8: the message store holds the room text, never the DM plaintext', async (t) => {
    const dataDir = net.server.dataDir
    t.ok(files(dataDir).some((f) => f.endsWith('messages.db')), 'the message store is in the data dir')
    t.not(filesContaining(dataDir, [Buffer.from(roomText)]).length, 0, 'room text is stored in clear (sanity: the search works)')
    t.same(filesContaining(dataDir, encodings(dmText)), [], 'no file contains the DM plaintext in any plain encoding')
    t.same(filesContaining(dataDir, [Buffer.from(dmText.split(' ')[2])]), [], 'nor its random word alone')
  })

  t.test('P1: alice\'s address reaches the entry relay, never the server', async (t) => {
    const ip = Buffer.from(ALICE_IP)
    const peers = readFileSync(peersFile, 'utf8').split('\n').filter(Boolean)
    t.ok(peers.length > 0, 'the server traced its peers')
    const relayHosts = net.relays.map((r) => r.host)
    t.same(peers.filter((p) => !relayHosts.includes(p.replace(/^::ffff:/, '').replace(/:\d+$/, ''))), [], 'every peer of the server is a relay')
    t.notOk(peers.some((p) => p.includes(ALICE_IP)), 'the server never saw alice\'s address')
    t.notOk((net.server.proc.stdout() + net.server.proc.stderr()).includes(ALICE_IP), 'nor logged it')
    t.same(filesContaining(net.server.dataDir, [ip]), [], 'nor stored it')

    const entrySaw = traces.filter((f) => { try { return readFileSync(f).includes(ip) } catch { return false } })
    t.equal(entrySaw.length, 1, 'exactly one relay (alice\'s entry guard) saw her address')
    // bob had no --local-address: he came from 127.0.0.1; alice's address is the one under test
  })
})
