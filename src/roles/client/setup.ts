// Turns the client flags into a running client: network settings (a devnet's
// devnet.json, or a bootstrap relay and the pinned directory key, remembered in
// the profile after first use), the circuit manager with the guard kept in the profile,
// and the password (MARSHMELLO_PASSWORD, --password-stdin, or a prompt without
// echo; never argv).
import type { Argv } from 'yargs'
import { createLogger, silentLogger } from '../../log.js'
import { authorityPin } from '../../onion/directory/consensus.js'
import { MarshmelloError } from '../../errors.js'
import type { Clock } from '../common/clock.js'
import { CircuitManager } from './circuit-manager.js'
import { ChatClient } from './chat-client.js'
import { Guards, profileGuardStore } from './circuits/guards.js'
import { readDevnet, type NetworkSettings } from './network.js'
import { loadSettings, updateSettings } from './profile/settings.js'

export function networkOptions<T> (y: Argv<T>) {
  return y
    .option('home', { type: 'string', describe: 'client home with profiles and settings (default ~/.marshmello)' })
    .option('devnet', { type: 'string', describe: 'use the devnet described in DIR/devnet.json (default DIR: ./.devnet)' })
    .option('relay', { type: 'string', array: true, describe: 'bootstrap relay URL (https://host:port); repeatable' })
    .option('directory-key', { type: 'string', describe: 'pinned fingerprint (hex) of the directory authority key; comma-separate several (the server\'s first)' })
    .option('directory-threshold', { type: 'number', describe: 'how many of the pinned authorities must sign a consensus (default: a majority)' })
    .option('local-address', { type: 'string', describe: 'source address for connections to the entry relay' })
    .option('rotate', { type: 'number', default: 600, describe: 'seconds before a new circuit replaces the current one' })
    .option('verbose', { type: 'boolean', default: false, describe: 'log circuit events to stderr' })
}

export interface ClientArgs {
  home?: string
  devnet?: string
  relay?: string[]
  'directory-key'?: string
  'directory-threshold'?: number
  'local-address'?: string
  rotate: number
  verbose: boolean
}

/** resolves network settings from flags, else from what the profile remembered */
export async function resolveNetwork (a: ClientArgs): Promise<NetworkSettings> {
  if (a.devnet !== undefined) {
    const n = readDevnet(a.devnet === '' ? '.devnet' : a.devnet)
    await updateSettings(a.home, (s) => ({ ...s, devnetDir: n.devnetDir, relay: undefined, directoryKey: undefined, directoryThreshold: undefined }))
    return n
  }
  if (a.relay?.length) {
    const key = a['directory-key']
    if (!key) throw new MarshmelloError('MM_ERR_CONFIG', 'with --relay, give --directory-key FPR[,FPR…] (the 64-hex fingerprint the server printed)')
    const pin = authorityPin(key, a['directory-threshold']) // MM_ERR_CONFIG for a malformed key or threshold
    const threshold = a['directory-threshold']
    await updateSettings(a.home, (s) => ({ ...s, relay: a.relay![0], directoryKey: pin.keys.join(','), directoryThreshold: threshold, devnetDir: undefined }))
    return { relays: a.relay, directoryKey: pin.keys.join(','), ...(threshold !== undefined ? { directoryThreshold: threshold } : {}) }
  }
  const s = await loadSettings(a.home)
  if (s.devnetDir) return readDevnet(s.devnetDir)
  if (s.relay && s.directoryKey) return { relays: [s.relay], directoryKey: s.directoryKey, ...(s.directoryThreshold !== undefined ? { directoryThreshold: s.directoryThreshold } : {}) }
  throw new MarshmelloError('MM_ERR_CONFIG', 'no network configured: pass --devnet DIR, or --relay URL --directory-key FPR (remembered afterwards)')
}

/** `clock`: what the circuits keep time with (tests pass a fake one) */
export async function openClient (a: ClientArgs, deps: { clock?: Clock } = {}): Promise<ChatClient> {
  const network = await resolveNetwork(a)
  const log = a.verbose ? createLogger({ name: 'client' }) : silentLogger
  const circuits = new CircuitManager({
    network,
    localAddress: a['local-address'],
    rotateMs: a.rotate * 1000,
    log,
    // path-bias warnings about the guard (path-spec §7) are shown even without --verbose
    guards: new Guards({ store: profileGuardStore(a.home), clock: deps.clock, log: a.verbose ? log : createLogger({ name: 'guards', level: 'warn' }) }),
    clock: deps.clock,
  })
  return new ChatClient(a.home, circuits)
}

/** the password from the environment, stdin (--password-stdin) or a prompt without echo */
export async function readPassword (a: { 'password-stdin'?: boolean }, prompt = 'password: '): Promise<string> {
  if (process.env.MARSHMELLO_PASSWORD) return process.env.MARSHMELLO_PASSWORD
  if (a['password-stdin']) {
    const chunks: Buffer[] = []
    for await (const c of process.stdin) {
      chunks.push(c as Buffer)
      if (Buffer.concat(chunks).includes(10)) break
    }
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]
    if (!line) throw new MarshmelloError('MM_ERR_PASSWORD', '--password-stdin read an empty line; pipe the password in')
    return line
  }
  if (!process.stdin.isTTY) throw new MarshmelloError('MM_ERR_PASSWORD', 'no terminal to ask for a password: set MARSHMELLO_PASSWORD or use --password-stdin')
  return promptHidden(prompt)
}

export function promptHidden (prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin
    stdin.setRawMode(true) // echo off before the prompt appears
    process.stderr.write(prompt)
    stdin.resume()
    let value = ''
    const done = (err?: Error) => {
      stdin.setRawMode(false)
      stdin.pause()
      stdin.removeListener('data', onData)
      process.stderr.write('\n')
      if (err) reject(err)
      else resolve(value)
    }
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003') return done(new MarshmelloError('MM_ERR_CANCELLED', 'cancelled'))
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
        else value += ch
      }
    }
    stdin.on('data', onData)
  })
}
