// yargs module for `marshmello server`.
import type { CommandModule } from 'yargs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { readFileSync, createWriteStream } from 'node:fs'
import { createLogger } from '../../log.js'
import { openMessageStore, openUserStore, defaultStoreUrls } from '../../storage/index.js'
import type { ServiceMode } from './index.js'
import { onShutdown } from '../common/process.js'
import { ensureDir } from '../common/identity.js'
import { canonicalIp } from '../../onion/directory/address.js'
import type { AuthorityPeer } from './directory.js'

/** `--authority-peer FP@URL` (repeated or comma-separated) → peers; throws for a malformed one */
function peerList (v: unknown): AuthorityPeer[] {
  const items = (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean)
  return items.map((x) => {
    const m = /^([0-9a-fA-F]{64})@(https:\/\/\S+)$/.exec(x)
    if (!m) throw new Error(`--authority-peer takes FINGERPRINT@https://host:port (64 hex, then the authority's URL), not ${JSON.stringify(x)}`)
    return { fingerprint: m[1]!.toLowerCase(), url: m[2]!.replace(/\/$/, '') }
  })
}

export const serverCommand: CommandModule<any, any> = {
  command: 'server',
  describe: 'run the chat server: auth, messaging, the gateway (final hop) and the directory',
  builder: (y) => y
    .option('port', { type: 'number', default: 7000, describe: 'port of the HTTPS face (cell channel + directory), or of the service alone' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on; with --service all or gateway also the IP literal published in the final hop\'s descriptor' })
    .option('data-dir', { type: 'string', describe: 'where keys, users and messages live (default ~/.marshmello/server)' })
    .option('service', { choices: ['all', 'auth', 'messages', 'gateway', 'directory'], default: 'all', describe: 'run every service in this process, or one alone' })
    .option('users', { type: 'string', describe: 'user store: sqlite:PATH | postgres://…[?schema=NAME] (default sqlite in the data dir)' })
    .option('messages', { type: 'string', describe: 'message store: nedb:PATH | mongodb://… | postgres://…[?schema=NAME] (default nedb in the data dir)' })
    .option('message-ttl', { type: 'number', describe: 'seconds a message is kept (default: kept)' })
    .option('dm-retention-days', { type: 'number', default: 30, describe: 'days a DM is kept on the server when its recipient never acknowledges it (acknowledged DMs are deleted at once)' })
    .option('token-ttl', { type: 'number', default: 43_200, describe: 'seconds a login token is valid' })
    .option('direct-api', { type: 'number', describe: 'also serve the API over plain HTTP on 127.0.0.1:PORT (debugging, benchmarks; bypasses the onion)' })
    .option('max-circuits', { type: 'number', default: 100_000, describe: 'most circuits the final hop keeps' })
    .option('circuit-ttl', { type: 'number', default: 900, describe: 'seconds an idle circuit is kept' })
    .option('auth-url', { type: 'string', describe: 'split mode: URL of the auth service (for gateway and messages)' })
    .option('messages-url', { type: 'string', describe: 'split mode: URL of the messages service (for the gateway)' })
    .option('internal-token-file', { type: 'string', describe: 'split mode: file holding the token the gateway and the services share (or MARSHMELLO_INTERNAL_TOKEN)' })
    .option('token-secret-file', { type: 'string', describe: 'split mode: file holding the JWT secret shared by auth and the gateway' })
    .option('directory', { type: 'string', describe: 'gateway in split mode: URL of the directory authority to publish to; comma-separate several' })
    .option('directory-key', { type: 'string', describe: 'gateway in split mode: pinned directory authority key fingerprint; comma-separate several' })
    .option('directory-threshold', { type: 'number', describe: 'gateway in split mode: how many pinned authorities must sign (default: a majority)' })
    .option('authority-peer', { type: 'string', array: true, describe: 'directory (all or directory): another directory authority, as FINGERPRINT@https://host:port (repeat or comma-separate); the consensus then needs a majority of the authorities\' signatures' })
    .option('gateway-fingerprint', { type: 'string', describe: 'directory in split mode: identity fingerprint of the gateway it lists as the final hop' })
    .option('relay-stale', { type: 'number', default: 30, describe: 'seconds without a heartbeat before a relay leaves the consensus' })
    .option('private-network', { type: 'boolean', default: false, describe: 'the directory serves a private test network: list loopback, private and link-local addresses, and any number of relays per address (devnets and tests; never on the Internet)' })
    .option('max-relays-per-ip', { type: 'number', describe: 'most relays the directory lists at one IP address (default 2, or no limit with --private-network; 0 = no limit)' })
    .option('stable-after', { type: 'number', describe: 'seconds of unbroken reachability before a relay is Stable (default 5 days, 0 with --private-network)' })
    .option('guard-after', { type: 'number', describe: 'seconds of unbroken reachability before a Stable relay is a Guard, the only relays clients take as guards (default 8 days, as Tor\'s "familiar"; 0 with --private-network)' })
    .option('verify-relays', { type: 'boolean', default: true, describe: 'list a relay only after it answers at its published address with its own identity (--no-verify-relays to skip; tests only)' })
    .option('trace-requests', { type: 'string', describe: 'append what the final hop sees of every request (circuit, token subject, path, body; passwords and bearer tokens masked) to this file as JSON lines (the adversarial-server test)' })
    .option('trace-peers', { type: 'string', describe: 'append the address of every peer that opens a cell channel to this file (tests)' })
    .option('log-json', { type: 'boolean', default: false, describe: 'log JSON lines' })
    .check((a) => {
      peerList(a['authority-peer'])
      if ((a.service === 'all' || a.service === 'gateway') && canonicalIp(a.host) === null) {
        throw new Error(`--host must be an IP address for --service ${a.service} (its descriptor lists an address, never a name), not ${JSON.stringify(a.host)}`)
      }
      return true
    }),
  handler: async (a) => {
    // loaded here, not at the top: other commands (send, read, …) start without fastify and the server's code
    const { startServer } = await import('./index.js')
    const log = createLogger({ name: 'server', json: a['log-json'] })
    const dataDir = a['data-dir'] ?? join(homedir(), '.marshmello', 'server')
    ensureDir(dataDir)
    const mode = a.service as ServiceMode
    const urls = defaultStoreUrls(dataDir)
    const users = mode === 'all' || mode === 'auth' ? await openUserStore(a.users ?? urls.users) : undefined
    const messages = mode === 'all' || mode === 'messages' ? await openMessageStore(a.messages ?? urls.messages) : undefined
    const internalToken = a['internal-token-file'] ? readFileSync(a['internal-token-file'], 'utf8').trim() : process.env.MARSHMELLO_INTERNAL_TOKEN
    const requests = a['trace-requests'] ? createWriteStream(a['trace-requests'], { flags: 'a', mode: 0o600 }) : undefined
    const peers = a['trace-peers'] ? createWriteStream(a['trace-peers'], { flags: 'a', mode: 0o600 }) : undefined
    const server = await startServer({
      service: mode,
      host: canonicalIp(a.host) ?? a.host,
      port: a.port,
      dataDir,
      directApi: a['direct-api'],
      messageTtlMs: a['message-ttl'] ? a['message-ttl'] * 1000 : undefined,
      tokenTtlMs: a['token-ttl'] * 1000,
      dmRetentionMs: dmRetention(a['dm-retention-days']),
      maxCircuits: a['max-circuits'],
      circuitTtlMs: a['circuit-ttl'] * 1000,
      internalToken,
      tokenSecretFile: a['token-secret-file'],
      authUrl: a['auth-url'],
      messagesUrl: a['messages-url'],
      directory: a.directory,
      directoryKey: a['directory-key'],
      directoryThreshold: a['directory-threshold'],
      authorityPeers: peerList(a['authority-peer']),
      gatewayFingerprint: a['gateway-fingerprint'],
      relayStaleMs: a['relay-stale'] * 1000,
      privateNetwork: a['private-network'],
      maxRelaysPerIp: a['max-relays-per-ip'],
      stableAfterMs: a['stable-after'] !== undefined ? a['stable-after'] * 1000 : undefined,
      guardAfterMs: a['guard-after'] !== undefined ? a['guard-after'] * 1000 : undefined,
      verifyRelays: a['verify-relays'],
      onPeer: peers ? (r) => peers.write(r + '\n') : undefined,
      onRequest: requests ? (r) => requests.write(JSON.stringify(r) + '\n') : undefined,
    }, { log, users, messages })
    const lines = [`server (${mode}) listening on ${server.url}`, `data dir ${dataDir}`]
    if (server.directoryFingerprint) lines.push(`directory key ${server.directoryFingerprint}`)
    if (server.identity && (mode === 'all' || mode === 'gateway')) lines.push(`final hop identity ${server.identity.fingerprintHex}`)
    if (server.directApiUrl) lines.push(`direct API (no onion, loopback only) on ${server.directApiUrl}`)
    process.stdout.write(lines.join('\n') + '\n')
    onShutdown(async () => {
      await server.close()
      await users?.close()
      await messages?.close()
      peers?.end()
    })
  },
}

/** the retention flag in ms; a non-positive or non-number value is a CLI error */
function dmRetention (days: number): number {
  if (!(typeof days === 'number' && Number.isFinite(days) && days > 0)) throw new Error('--dm-retention-days must be a positive number of days')
  return days * 24 * 3600_000
}
