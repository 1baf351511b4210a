// Split mode (docs/ARCHITECTURE.md §8): directory, auth, messages and the gateway each in its
// own process, three relays registered with the directory, and a client that
// registers, sends and reads through circuits ending at the gateway. The internal
// token and the JWT secret travel in files, never in any process's argv; the
// services refuse callers without the token.
import t from 'tap'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { directoryFingerprint } from '../../../src/onion/directory/consensus.js'
import { loadOrCreateDirectoryKey, loadOrCreateIdentity } from '../../../src/roles/common/identity.js'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'
import { run, tmp } from '../../helpers/net.js'
import { relayHost, startDirectoryRelay, startServerProc, stopProc, waitForConsensus, writeDevnetFile, type RelayInfo, type ServerInfo } from '../../helpers/network.js'

const PASSWORD = 'split-mode-password'

t.test('four server processes and three relays: register, send and read through circuits', async (t) => {
  const dir = tmp('mm-split-')
  const procs: ServerInfo[] = []
  const relays: RelayInfo[] = []
  t.teardown(async () => { await Promise.all([...relays, ...procs].map((p) => stopProc(p.proc))) })

  const internalToken = randomBytes(24).toString('hex')
  const tokenSecret = randomBytes(32).toString('hex')
  const tokenFile = join(dir, 'internal.token')
  const secretFile = join(dir, 'token.secret')
  writeFileSync(tokenFile, internalToken + '\n', { mode: 0o600 })
  writeFileSync(secretFile, tokenSecret, { mode: 0o600 })

  // each side needs the other's key before it starts: create both in their data dirs
  // with the functions the server uses, so the processes load rather than create them
  const gwDir = join(dir, 'gateway')
  const dirDir = join(dir, 'directory')
  const gatewayFpr = loadOrCreateIdentity(gwDir, '127.0.0.1').fingerprintHex
  const directoryKey = directoryFingerprint(loadOrCreateDirectoryKey(dirDir).publicKey)

  const directory = await startServerProc({ dataDir: dirDir, args: ['--service', 'directory', '--gateway-fingerprint', gatewayFpr] })
  procs.push(directory)
  t.equal(directory.directoryKey, directoryKey, 'the directory uses the pre-created key')
  t.notOk(directory.fingerprint, 'the directory alone is no final hop')

  const auth = await startServerProc({ dataDir: join(dir, 'auth'), args: ['--service', 'auth', '--internal-token-file', tokenFile, '--token-secret-file', secretFile] })
  procs.push(auth)
  const messages = await startServerProc({ dataDir: join(dir, 'messages'), args: ['--service', 'messages', '--auth-url', auth.url, '--internal-token-file', tokenFile] })
  procs.push(messages)
  t.match(auth.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(messages.url, /^http:\/\/127\.0\.0\.1:\d+$/)

  const gateway = await startServerProc({
    dataDir: gwDir,
    args: ['--service', 'gateway', '--auth-url', auth.url, '--messages-url', messages.url, '--directory', directory.url, '--directory-key', directoryKey, '--token-secret-file', secretFile, '--internal-token-file', tokenFile],
  })
  procs.push(gateway)
  t.equal(gateway.fingerprint, gatewayFpr, 'the gateway uses the pre-created identity')

  relays.push(...await Promise.all([0, 1, 2].map((i) => startDirectoryRelay({
    host: relayHost(i), directory: directory.url, directoryKey, dataDir: join(dir, `relay-${i + 1}`), nickname: `relay${i + 1}`,
  }))))
  await waitForConsensus({ directory: directory.url, relays, directoryKey, deadline: Date.now() + 30_000 })
  const consensus = JSON.parse((await fetchDocument(`${directory.url}/v1/directory/consensus`)).text)
  t.equal(consensus.server.fingerprint, gatewayFpr, 'the consensus names the gateway as the final hop')
  t.equal(consensus.server.port, gateway.port)
  writeDevnetFile(dir, {
    version: 1,
    dir,
    host: '127.0.0.1',
    directoryKey,
    server: { url: gateway.url, host: gateway.host, port: gateway.port, pid: gateway.proc.child.pid!, fingerprint: gatewayFpr, dataDir: gwDir },
    relays: relays.map((r) => ({ nickname: r.nickname, url: r.url, host: r.host, port: r.port, pid: r.proc.child.pid!, fingerprint: r.fingerprint, dataDir: r.dataDir })),
    startedAt: Date.now(),
    pid: process.pid,
  })

  t.test('the secrets are in files, never in argv', async (t) => {
    for (const p of [...procs, ...relays]) {
      const argv = readFileSync(`/proc/${p.proc.child.pid}/cmdline`)
      t.ok(argv.length > 0, `read argv of pid ${p.proc.child.pid}`)
      t.notOk(argv.includes(internalToken), `the internal token is not in argv of ${argv.toString().split('\0').slice(2, 4).join(' ')}`)
      t.notOk(argv.includes(tokenSecret), 'nor the token secret')
    }
    t.ok(readFileSync(`/proc/${gateway.proc.child.pid}/cmdline`).includes(tokenFile), 'sanity: argv names the token file')
  })

  t.test('the services refuse callers without the internal token', async (t) => {
    for (const [base, path] of [[auth.url, '/v1/auth/register'], [messages.url, '/v1/rooms/lobby/messages']]) {
      const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-marshmello-user': 'mallory' }, body: JSON.stringify({ username: 'mallory', password: 'mallory-pass', clientId: 'x', text: 'hi' }) })
      t.equal(res.status, 401, `${path} without the token`)
      t.equal((await res.json() as any).error.code, 'MM_ERR_INTERNAL_TOKEN')
      const wrong = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-marshmello-internal': 'x'.repeat(48) }, body: '{}' })
      t.equal(wrong.status, 401, `${path} with a wrong token`)
    }
  })

  t.test('a client registers, sends and reads through circuits ending at the gateway', async (t) => {
    const cli = async (home: string, args: string[]) => {
      const p = run([...args, '--devnet', dir, '--home', home], { env: { MARSHMELLO_PASSWORD: PASSWORD } })
      t.equal(await p.exited, 0, `${args.slice(0, 3).join(' ')} exits 0`, { stderr: p.stderr() })
      return p.stdout()
    }
    const home = tmp('mm-split-home-')
    const text = `split hello ${Date.now()}`
    t.match(await cli(home, ['register', '--user', 'carol']), /registered carol/)
    t.match(await cli(home, ['send', '--user', 'carol', '--room', 'split', text]), /^sent \S+/)
    const out = await cli(home, ['read', '--user', 'carol', '--room', 'split', '--json'])
    t.match(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)), [{ from: 'carol', room: 'split', text }], 'reads back its message')

    const gw = await fetchOperatorJson(`${gateway.url}/metrics`, readOperatorCredentials(gateway.dataDir))
    t.ok(Number(gw?.requestsServed) >= 3, 'the requests went through the gateway\'s final hop (operator counters)')
    const d = await fetchOperatorJson(`${directory.url}/metrics`, readOperatorCredentials(directory.dataDir))
    t.equal(d?.relays, 3)
    // each service holds its own state
    t.ok(readFileSync(join(dir, 'messages', 'messages.db')).includes(Buffer.from(text)), 'stored by the messages service')
    const authFiles = readdirSync(join(dir, 'auth')).map((f) => readFileSync(join(dir, 'auth', f)))
    t.ok(authFiles.some((b) => b.includes(Buffer.from('carol'))), 'the user is stored by the auth service (users.db or its WAL)')
  })
})
