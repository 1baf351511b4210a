// Split mode (docs/ARCHITECTURE.md §8): directory, auth, messages and the gateway each in its
// own process, three relays registered with the directory, and a client that
// registers, sends and reads through circuits ending at the gateway. The internal
// token and the JWT secret travel in files, never in any process's argv; the
// services refuse callers without the token.
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fetchDocument } from '../../../src/roles/common/signed-fetch.js'
import { fetchOperatorJson, readOperatorCredentials } from '../../../src/roles/common/operator.js'
import { run, tmp } from '../../helpers/net.js'
import { startNetwork } from '../../helpers/network.js'

const PASSWORD = 'split-mode-password'

t.test('four server processes and three relays: register, send and read through circuits', async (t) => {
  // the devnet's own split mode: it makes the gateway's identity and the directory key
  // in their data dirs first (each side pins the other), and the shared secrets in 0600 files
  const net = await startNetwork({ mode: 'split' })
  t.teardown(net.stop)
  const { dir, info } = net
  const services = info.services!
  t.equal(info.mode, 'split')
  const gateway = { ...info.server, proc: net.server.proc }
  const directory = { ...services.directory, proc: net.services.directory! }
  const auth = { ...services.auth, proc: net.services.auth! }
  const messages = { ...services.messages, proc: net.services.messages! }
  const procs = [directory, auth, messages, gateway]
  const relays = net.relays
  const internalToken = readFileSync(services.internalTokenFile, 'utf8').trim()
  const tokenSecret = readFileSync(services.tokenSecretFile, 'utf8').trim()
  const tokenFile = services.internalTokenFile
  t.match(internalToken, /^[0-9a-f]{48}$/, 'an internal token was made')
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'its file is 0600')
  t.equal(statSync(services.tokenSecretFile).mode & 0o777, 0o600, 'and so is the JWT secret\'s')
  t.equal(info.directoryUrl, directory.url, 'the consensus comes from the directory service')
  t.match(directory.proc.stdout(), `directory key ${info.directoryKey}`, 'the directory uses the pre-created key')
  t.notMatch(directory.proc.stdout(), /final hop identity/, 'the directory alone is no final hop')
  t.match(auth.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(messages.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(gateway.proc.stdout(), `final hop identity ${gateway.fingerprint}`, 'the gateway uses the pre-created identity')

  const consensus = JSON.parse((await fetchDocument(`${directory.url}/v1/directory/consensus`)).text)
  t.equal(consensus.server.fingerprint, gateway.fingerprint, 'the consensus names the gateway as the final hop')
  t.equal(consensus.server.port, gateway.port)
  t.equal(consensus.relays.length, 3, 'and the three relays')

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
