// yargs module for `marshmello relay`.
import type { CommandModule } from 'yargs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../log.js'
import { openSessionStore } from '../../storage/index.js'
import { onShutdown } from '../common/process.js'
import { canonicalIp } from '../../onion/directory/address.js'
import { authorityPin } from '../../onion/directory/consensus.js'

const familyList = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim().toLowerCase()).filter(Boolean)

export const relayCommand: CommandModule<any, any> = {
  command: 'relay',
  describe: 'run one onion relay (exchange keys, set redirection, redirect)',
  builder: (y) => y
    .option('port', { type: 'number', demandOption: true, describe: 'TCP port to listen on (HTTPS + cell channels)' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'IP address to listen on and to publish in the descriptor (a literal: names are never resolved on a path)' })
    .option('data-dir', { type: 'string', describe: 'where the identity key and TLS certificate live (default ~/.marshmello/relay-<port>)' })
    .option('nickname', { type: 'string', describe: 'a public name for this relay ([A-Za-z0-9_-], ≤ 32)' })
    .option('directory', { type: 'string', describe: 'URL of the directory authority to register with and fetch the consensus from; comma-separate several (the descriptor goes to each)' })
    .option('directory-key', { type: 'string', describe: 'pinned fingerprint (hex) of the directory authority key that signs the consensus; comma-separate several (the server\'s first)' })
    .option('directory-threshold', { type: 'number', describe: 'how many of the pinned authorities must sign a consensus (default: a majority)' })
    .option('family', { type: 'string', array: true, describe: 'fingerprint (hex) of another relay you run (repeat or comma-separate); a family only counts where each relay names the other' })
    .option('consensus', { type: 'string', describe: 'read the signed consensus from this file instead of a directory (re-read when it changes)' })
    .option('max-circuits', { type: 'number', default: 100_000, describe: 'most circuits at once; a CREATE beyond is refused BUSY (none evicted)' })
    .option('circuit-ttl', { type: 'number', default: 900, describe: 'seconds an idle circuit is kept' })
    .option('sessions', { type: 'string', default: 'memory', describe: 'circuit session store: memory | redis://host:port (shared: relay processes with the same identity serve the same circuits)' })
    .option('sessions-prefix', { type: 'string', describe: 'key prefix in a shared session store (default mm:relay:<first 16 hex of the fingerprint>:)' })
    .option('reattach-grace', { type: 'number', default: 3, describe: 'seconds the circuits of a closed inbound channel wait for the previous hop to come back' })
    .option('create-rate', { type: 'number', default: 3, describe: 'handshakes per second allowed per client address' })
    .option('create-burst', { type: 'number', default: 90, describe: 'handshake burst allowed per client address' })
    .option('relay-create-rate', { type: 'number', default: 200, describe: 'handshakes per second allowed per listed relay that proved its identity on its channel' })
    .option('relay-create-burst', { type: 'number', default: 2000, describe: 'handshake burst allowed per listed relay' })
    .option('circuit-queue', { type: 'number', default: 1024, describe: 'cells one circuit may have waiting here before it is ended' })
    .option('max-queued-mem', { type: 'number', default: 256, describe: 'MiB of cells waiting in all queues before the circuits holding the oldest are ended' })
    .option('stall-timeout', { type: 'number', default: 10, describe: 'seconds a peer may read nothing while cells wait for it before its channel closes' })
    .option('extend-timeout', { type: 'number', default: 10, describe: 'seconds an EXTEND may wait for its channel, and then for CREATED' })
    .option('max-channels', { type: 'number', default: 10_000, describe: 'most open channels' })
    .option('sweep-interval', { type: 'number', default: 30, describe: 'seconds between sweeps of local routing entries for circuits that expired or were evicted' })
    .option('trace', { type: 'string', describe: 'append one JSON line per cell (from, to, size) to this file (for demos and tests)' })
    .option('trace-cells', { type: 'boolean', default: false, describe: 'with --trace, also write each received cell\'s (encrypted) bytes (demo)' })
    .option('log-json', { type: 'boolean', default: false, describe: 'log JSON lines' })
    .check((a) => {
      if (!a['directory-key']) throw new Error('--directory-key FPR is required: the fingerprint of the directory key the consensus must be signed with')
      if (!a.directory && !a.consensus) throw new Error('give --directory URL (register with a server) or --consensus FILE')
      if (!String(a['directory-key']).split(',').every((k) => /^\s*[0-9a-fA-F]{64}\s*$/.test(k))) throw new Error('--directory-key must be 64 hex characters (comma-separate the keys of several authorities)')
      authorityPin(a['directory-key'], a['directory-threshold']) // distinct keys, a threshold from 1 to their number
      if (!(a.port >= 0 && a.port < 65536)) throw new Error('--port must be 0..65535')
      if (canonicalIp(a.host) === null) throw new Error(`--host must be an IP address (e.g. 127.0.0.1 or 2001:db8::1), not ${JSON.stringify(a.host)}: descriptors list addresses, never names`)
      for (const f of familyList(a.family)) if (!/^[0-9a-f]{64}$/.test(f)) throw new Error(`--family takes 64-hex relay fingerprints, not ${JSON.stringify(f)}`)
      for (const k of ['max-circuits', 'relay-create-burst', 'circuit-queue', 'max-queued-mem', 'stall-timeout', 'extend-timeout']) {
        if (!(a[k] > 0)) throw new Error(`--${k} must be a positive number`)
      }
      return true
    }),
  handler: async (a) => {
    // loaded here, not at the top: other commands (send, read, …) start without fastify and the relay's code
    const { startRelay, sessionKeyFor } = await import('./index.js')
    const log = createLogger({ name: 'relay', json: a['log-json'] })
    const ttlMs = a['circuit-ttl'] * 1000
    const relay = await startRelay({
      host: canonicalIp(a.host)!,
      family: familyList(a.family),
      port: a.port,
      dataDir: a['data-dir'] ?? join(homedir(), '.marshmello', `relay-${a.port}`),
      nickname: a.nickname ?? `relay${a.port}`,
      consensusFile: a.consensus,
      directory: a.directory,
      directoryKey: authorityPin(a['directory-key']).keys.join(','),
      directoryThreshold: a['directory-threshold'],
      createRate: a['create-rate'],
      createBurst: a['create-burst'],
      relayCreateRate: a['relay-create-rate'],
      relayCreateBurst: a['relay-create-burst'],
      maxCircuits: a['max-circuits'],
      circuitQueueCells: a['circuit-queue'],
      maxQueuedBytes: a['max-queued-mem'] * 1024 * 1024,
      stallMs: a['stall-timeout'] * 1000,
      extendTimeoutMs: a['extend-timeout'] * 1000,
      maxChannels: a['max-channels'],
      traceFile: a.trace,
      traceCells: a['trace-cells'],
      sweepMs: a['sweep-interval'] * 1000,
      reattachGraceMs: a['reattach-grace'] * 1000,
    }, {
      log,
      sessions: (identity) => openSessionStore(a.sessions, {
        // a circuit holds two records (its hop record and, extended, a back pointer): the
        // relay refuses CREATEs at --max-circuits, so the store never evicts a live one
        maxEntries: 2 * a['max-circuits'] + 1024,
        ttlMs,
        encryptionKey: sessionKeyFor(identity),
        keyPrefix: a['sessions-prefix'] ?? `mm:relay:${identity.fingerprintHex.slice(0, 16)}:`,
      }),
    })
    process.stdout.write(`relay ${relay.identity.fingerprintHex} listening on ${relay.url} (data dir ${a['data-dir'] ?? join(homedir(), '.marshmello', `relay-${a.port}`)})\n`)
    onShutdown(() => relay.close())
  },
}
