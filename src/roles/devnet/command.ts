// yargs module for `marshmello devnet`: starts the local network (index.ts) and
// prints it — one line per role, how to connect from where the user stands, then
// live counts — or, with --json, one JSON object per event on stdout. Children's
// stderr is passed on prefixed with their role. A relay that dies is reported and the
// network keeps running without it (`devnet restart`, or --restart-after, starts it
// again); the server's death ends the devnet (exit 1); Ctrl-C/SIGTERM stop
// everything (exit 0).
import type { CommandModule } from 'yargs'
import { dirArg, invocation, type Invocation } from './connect-hint.js'
import type { ChildExitEvent, Devnet, DevnetInfo, DevnetStats, RestartEvent } from './index.js'
import { RESTART_SIGNAL } from './restart-request.js'

const out = (line: string) => { try { process.stdout.write(line + '\n') } catch { /* stdout closed */ } }
const err = (line: string) => { try { process.stderr.write(line + '\n') } catch { /* stderr closed */ } }

/** how the user runs this program from where they stand, and the devnet dir as they would type it */
interface Connect extends Invocation { devnet: string }

function readyLines (info: DevnetInfo, startMs: number, c: Connect): string[] {
  const pad = (s: string) => s.padEnd(8)
  const [p, d] = [c.prefix, c.devnet]
  return [
    `${pad('server')} ${info.server.url}  identity ${info.server.fingerprint.slice(0, 16)}…  pid ${info.server.pid}  data ${info.server.dataDir}`,
    ...info.relays.map((r) => `${pad(r.nickname)} ${r.url}  identity ${r.fingerprint.slice(0, 16)}…  pid ${r.pid}  data ${r.dataDir}`),
    ...(info.authorities.length > 1 ? info.authorities.slice(1).map((x, j) => `${pad(`auth${j + 2}`)} ${x.url}  directory authority ${x.fingerprint.slice(0, 16)}…  pid ${x.pid ?? '?'}  data ${x.dataDir ?? '?'}`) : []),
    `directory key ${info.directoryKey}${info.authorities.length > 1 ? `  (${info.authorities.length} authorities, ${info.directoryThreshold} must sign)` : ''}`,
    `devnet ready in ${((Date.now() - startMs) / 1000).toFixed(1)} s: ${info.relays.length} relays listed in the consensus; endpoints in ${info.dir}/devnet.json`,
    `connect from ${c.cwd} with: ${p} chat --devnet ${d}`,
    `  scripting:  ${p} register --devnet ${d} --user alice`,
    `              ${p} send --devnet ${d} --user alice --room lobby "hello"`,
    `              ${p} read --devnet ${d} --user alice --room lobby --follow`,
    `  a relay that dies stays down until \`${p} devnet restart --dir ${d}\` (or --restart-after SECONDS)`,
    'Ctrl-C stops the devnet (data dirs are kept).',
  ]
}

function statsLine (s: DevnetStats): string {
  const t = new Date(s.at).toTimeString().slice(0, 8)
  const down = s.unreachable.length ? `  UNREACHABLE: ${s.unreachable.join(', ')}` : ''
  return `[${t}] circuits ${s.circuits} at the server, ${s.relayCircuits} across relays · messages ${s.messages} · users ${s.users} · relays listed ${s.relaysListed} · requests ${s.requestsServed}${down}`
}

function exitLine (e: ChildExitEvent, c: Connect): string {
  const how = e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`
  const head = `devnet: !!! ${e.role} (pid ${e.pid}) exited unexpectedly (${how})`
  if (e.role === 'server') return `${head}; stopping the devnet`
  const then = e.restartInMs !== undefined
    ? `restarting it in ${e.restartInMs / 1000} s`
    : `start it again with: ${c.prefix} devnet restart ${e.role} --dir ${c.devnet}`
  return `${head}; the network keeps running without it; ${then}`
}

const restartLine = (e: RestartEvent): string => e.ok
  ? `devnet: ${e.role} restarted (pid ${e.pid}) at ${e.url}, listed in the consensus again`
  : `devnet: !!! ${e.role} did not come back: ${e.message}`

const restartCommand: CommandModule<any, any> = {
  command: 'restart [names..]',
  describe: 'start stopped relays of the devnet running in --dir again (default: every stopped relay)',
  builder: (y) => y
    .positional('names', { type: 'string', array: true, describe: 'relay nicknames (relay1, relay2, …)' })
    .option('dir', { type: 'string', default: './.devnet', describe: 'the running devnet\'s dir' }),
  handler: async (a) => {
    const { requestRestart } = await import('./restart-request.js')
    await requestRestart({ dir: a.dir, relays: (a.names ?? []).map(String), say: out })
  },
}

export const devnetCommand: CommandModule<any, any> = {
  command: 'devnet',
  describe: 'run a whole local network: the server and N relays on loopback, in one command',
  builder: (y) => y
    .command(restartCommand)
    .option('relays', { type: 'number', default: 5, describe: 'number of relays' })
    .option('dir', { type: 'string', default: './.devnet', describe: 'where data dirs and devnet.json live (kept between runs)' })
    .option('port-base', { type: 'number', default: 7100, describe: 'server port; relay i listens on port-base + i, extra directory authorities above the relays' })
    .option('authorities', { type: 'number', default: 3, describe: 'directory authorities signing the consensus: the server\'s and this many less one `server --service directory` processes (1: the server alone)' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'loopback address every role listens on' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object per event (ready, stats, child-exit, relay-restart, stopped) instead of text' })
    .option('stats-interval', { type: 'number', default: 10, describe: 'seconds between live count lines (0: none)' })
    .option('restart-after', { type: 'number', default: 0, describe: 'restart a relay that dies after this many seconds (0: it stays down until `devnet restart`)' })
    .option('demo', { type: 'boolean', default: false, describe: 'run two scripted users and show what each hop saw for one message' }),
  handler: async (a) => {
    const { startDevnet } = await import('./index.js')
    const { takeRestartRequest } = await import('./restart-request.js')
    const json: boolean = a.json
    const event = (e: Record<string, unknown>) => out(JSON.stringify(e))
    const startMs = Date.now()
    const restartAfter: number = a['restart-after']
    if (!Number.isFinite(restartAfter) || restartAfter < 0 || restartAfter > 3600) throw new Error('--restart-after must be a number of seconds from 0 to 3600')
    let devnet: Devnet | undefined
    let signalled: string | undefined
    let finishing = false
    let connect: Connect | undefined

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
    let ready: Devnet | undefined
    // `marshmello devnet restart` (restart-request.ts) names relays in a file and signals
    // us; installed early, so the signal never kills a devnet that is still starting
    process.on(RESTART_SIGNAL, () => {
      const d = ready
      if (!d || finishing) return
      const named = takeRestartRequest(d.info.dir) ?? d.downRelays()
      for (const role of named) {
        d.restartRelay(role).catch((e: Error) => { if (!/did not come back/.test(e.message)) err(`devnet: ${e.message}`) })
      }
    })
    let timer: NodeJS.Timeout | undefined

    try {
      devnet = await startDevnet({
        relays: a.relays,
        dir: a.dir,
        portBase: a['port-base'],
        host: a.host,
        authorities: a.authorities,
        trace: a.demo,
        keepRelays: true,
        restartRelayAfterMs: restartAfter > 0 ? restartAfter * 1000 : undefined,
      }, {
        onChildLine: (role, line) => err(`[${role}] ${line}`),
        onChildExit: (e) => {
          if (json) event({ event: 'child-exit', ...e })
          if (!e.expected && connect) err(exitLine(e, connect))
          else if (!e.expected) err(`devnet: !!! ${e.role} (pid ${e.pid}) exited during start-up; stopping the devnet`)
        },
        onRestart: (e) => {
          if (json) event({ event: 'relay-restart', ...e })
          err(restartLine(e))
        },
      })
    } catch (e) {
      const msg = (e as Error).message
      if (json) event({ event: 'error', message: msg })
      if (signalled) { if (json) event({ event: 'stopped', reason: signalled, code: 0 }); process.exit(0) }
      throw new Error(`devnet did not start: ${msg}`, { cause: e })
    }
    if (signalled) return finish(0, signalled)
    const inv = invocation()
    connect = { ...inv, devnet: dirArg(devnet.info.dir, inv.cwd) }

    if (json) event({ event: 'ready', ...devnet.info, connect })
    else for (const line of readyLines(devnet.info, startMs, connect)) out(line)

    void devnet.failed.then((e) => finish(1, `${e.role} exited unexpectedly`))
    ready = devnet

    const d = devnet
    if (a['stats-interval'] > 0) {
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
