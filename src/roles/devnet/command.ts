// yargs module for `marshmello devnet`: starts the local network (index.ts) and
// prints it — one line per role, then live counts — or, with --json, one JSON object
// per event on stdout. Children's stderr is passed on prefixed with their role.
// Ctrl-C/SIGTERM stop everything (exit 0); a child dying ends the devnet (exit 1).
import type { CommandModule } from 'yargs'
import type { Devnet, DevnetInfo, DevnetStats } from './index.js'

const out = (line: string) => { try { process.stdout.write(line + '\n') } catch { /* stdout closed */ } }
const err = (line: string) => { try { process.stderr.write(line + '\n') } catch { /* stderr closed */ } }

function readyLines (info: DevnetInfo, startMs: number): string[] {
  const pad = (s: string) => s.padEnd(8)
  const d = info.dir
  return [
    `${pad('server')} ${info.server.url}  identity ${info.server.fingerprint.slice(0, 16)}…  pid ${info.server.pid}  data ${info.server.dataDir}`,
    ...info.relays.map((r) => `${pad(r.nickname)} ${r.url}  identity ${r.fingerprint.slice(0, 16)}…  pid ${r.pid}  data ${r.dataDir}`),
    `directory key ${info.directoryKey}`,
    `devnet ready in ${((Date.now() - startMs) / 1000).toFixed(1)} s: ${info.relays.length} relays listed in the consensus; endpoints in ${d}/devnet.json`,
    `connect with: marshmello chat --devnet ${d}`,
    `  scripting:  marshmello register --devnet ${d} --user alice`,
    `              marshmello send --devnet ${d} --user alice --room lobby "hello"`,
    `              marshmello read --devnet ${d} --user alice --room lobby --follow`,
    'Ctrl-C stops the devnet (data dirs are kept).',
  ]
}

function statsLine (s: DevnetStats): string {
  const t = new Date(s.at).toTimeString().slice(0, 8)
  const down = s.unreachable.length ? `  UNREACHABLE: ${s.unreachable.join(', ')}` : ''
  return `[${t}] circuits ${s.circuits} at the server, ${s.relayCircuits} across relays · messages ${s.messages} · users ${s.users} · relays listed ${s.relaysListed} · requests ${s.requestsServed}${down}`
}

export const devnetCommand: CommandModule<any, any> = {
  command: 'devnet',
  describe: 'run a whole local network: the server and N relays on loopback, in one command',
  builder: (y) => y
    .option('relays', { type: 'number', default: 5, describe: 'number of relays' })
    .option('dir', { type: 'string', default: './.devnet', describe: 'where data dirs and devnet.json live (kept between runs)' })
    .option('port-base', { type: 'number', default: 7100, describe: 'server port; relay i listens on port-base + i' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'loopback address every role listens on' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object per event (ready, stats, child-exit, stopped) instead of text' })
    .option('stats-interval', { type: 'number', default: 10, describe: 'seconds between live count lines (0: none)' })
    .option('demo', { type: 'boolean', default: false, describe: 'run two scripted users and show what each hop saw for one message' }),
  handler: async (a) => {
    const { startDevnet } = await import('./index.js')
    const json: boolean = a.json
    const event = (e: Record<string, unknown>) => out(JSON.stringify(e))
    const startMs = Date.now()
    let devnet: Devnet | undefined
    let signalled: string | undefined
    let finishing = false

    const finish = async (code: number, reason: string) => {
      if (finishing) return
      finishing = true
      if (timer) clearInterval(timer)
      await devnet?.stop()
      if (json) event({ event: 'stopped', reason, code })
      else err(`devnet: stopped (${reason})`)
      process.exit(code)
    }
    // installed before any child starts, so an early Ctrl-C stops what has started
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        signalled ??= sig
        if (devnet) void finish(0, sig)
      })
    }
    let timer: NodeJS.Timeout | undefined

    try {
      devnet = await startDevnet({ relays: a.relays, dir: a.dir, portBase: a['port-base'], host: a.host, trace: a.demo }, {
        onChildLine: (role, line) => err(`[${role}] ${line}`),
        onChildExit: (e) => {
          if (json) event({ event: 'child-exit', ...e })
          if (!e.expected) {
            const how = e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`
            err(`devnet: !!! ${e.role} (pid ${e.pid}) exited unexpectedly (${how}); stopping the devnet — nothing is restarted`)
          }
        },
      })
    } catch (e) {
      const msg = (e as Error).message
      if (json) event({ event: 'error', message: msg })
      if (signalled) { if (json) event({ event: 'stopped', reason: signalled, code: 0 }); process.exit(0) }
      throw new Error(`devnet did not start: ${msg}`, { cause: e })
    }
    if (signalled) return finish(0, signalled)

    if (json) event({ event: 'ready', ...devnet.info })
    else for (const line of readyLines(devnet.info, startMs)) out(line)

    void devnet.failed.then((e) => finish(1, `${e.role} exited unexpectedly`))

    if (a['stats-interval'] > 0) {
      const d = devnet
      timer = setInterval(() => {
        void d.stats().then((s) => {
          if (finishing) return
          if (json) event({ event: 'stats', ...s })
          else out(statsLine(s))
        })
      }, a['stats-interval'] * 1000)
    }
    if (a.demo) {
      const { runDemo } = await import('./demo.js')
      await runDemo(devnet, json ? (line) => event({ event: 'demo', line }) : out)
    }
  },
}
