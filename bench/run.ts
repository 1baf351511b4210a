// `npm run bench`: measures Marshmello on loopback in one run (circuit build, onion vs
// direct round trip, delivery, throughput and relay CPU, direct messages (sealed, on
// ratchet sessions) beside room sends, relay memory per circuit,
// storage, single-executable cold start, the onion alone against an echo final hop, and the
// path-compromise simulation of issue 15), prints tables and target verdicts, and
// writes bench/results/latest.json (+ a timestamped copy) and latency-vs-concurrency.svg.
// Flags: --quick (seconds, tiny samples: CI), --only=a,b (cases: build, roundtrip, delivery,
// throughput, dm, memory, echo, storage, coldstart, paths), --cpu-prof=DIR (relays, server),
// --circuits=N (relay-memory case size), --levels=1,16 (throughput concurrency levels).
// BENCH_NODE_ARGS='--flag …' adds node flags to the relay and server processes (experiments).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fullPath, startNetwork, type BenchNetwork } from './lib/network.js'
import { startEchoNetwork } from './lib/echo-network.js'
import { ROOT, killAllSync, stopAll } from './lib/procs.js'
import { nowMs, round } from './lib/stats.js'
import { FULL_PLAN, QUICK_PLAN } from './lib/plan.js'
import { benchCircuitBuild } from './cases/circuit-build.js'
import { benchRoundTrip } from './cases/round-trip.js'
import { benchDelivery } from './cases/delivery.js'
import { benchThroughput } from './cases/throughput.js'
import { benchRelayMemory } from './cases/relay-memory.js'
import { benchStorage } from './cases/storage.js'
import { benchColdStart } from './cases/cold-start.js'
import { benchEcho } from './cases/echo.js'
import { benchPathCompromise } from './cases/path-compromise.js'
import { benchDm } from './cases/dm.js'
import { machine, machineSpeed } from './report/machine.js'
import { checkTargets } from './report/targets.js'
import { render } from './report/table.js'
import { latencyChart } from './report/svg.js'
import type { BenchResults } from './report/results.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',')
const cpuProf = args.find((a) => a.startsWith('--cpu-prof='))?.slice(11)
const profArgs = [...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : []), ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [])]
const want = (name: string) => !only || only.includes(name)
const circuitsArg = Number(args.find((a) => a.startsWith('--circuits='))?.slice(11) ?? NaN)
const levelsArg = args.find((a) => a.startsWith('--levels='))?.slice(9).split(',').map(Number)
if (levelsArg && !levelsArg.every((n) => Number.isInteger(n) && n > 0)) {
  process.stderr.write('bench: --levels takes positive integers, e.g. --levels=1,16\n')
  process.exit(2)
}

const plan = { ...(quick ? QUICK_PLAN : FULL_PLAN) }
if (levelsArg) plan.levels = levelsArg

const OUT = join(ROOT, 'bench', 'results', ...(quick ? ['quick'] : []))

async function main (): Promise<number> {
  const t0 = nowMs()
  const r: BenchResults = { version: 1, mode: quick ? 'quick' : 'full', startedAt: new Date().toISOString(), machine: machine(), errors: [] }
  r.machine.speed = await machineSpeed()
  const step = async (name: string, fn: () => Promise<void>, always = false) => {
    if (!always && !want(name)) return
    process.stderr.write(`bench: ${name}…\n`)
    try { await fn() } catch (err) { r.errors.push({ case: name, message: String((err as Error)?.stack ?? err).split('\n').slice(0, 3).join(' | ') }) }
  }
  const needsNet = ['build', 'roundtrip', 'delivery', 'throughput', 'dm', 'memory'].some(want)
  let net: BenchNetwork | null = null
  try {
    if (needsNet) {
      await step('network', async () => {
        net = await startNetwork({ relayNodeArgs: profArgs, serverNodeArgs: profArgs })
      }, true)
    }
    const n = (): BenchNetwork => { if (!net) throw new Error('no network (see the network error)'); return net }
    await step('build', async () => { r.circuitBuild = await benchCircuitBuild(fullPath(n()), plan.builds) })
    await step('roundtrip', async () => { r.roundTrip = await benchRoundTrip(n(), plan.roundTrips) })
    await step('delivery', async () => { r.delivery = await benchDelivery(n(), plan.deliveries) })
    await step('throughput', async () => {
      r.throughput = await benchThroughput(n(), plan.levels, plan.seconds)
      const top = r.throughput[r.throughput.length - 1]
      const busiest = [...top.relays].sort((a, b) => a.cellsPerCpuSecond - b.cellsPerCpuSecond)[0]
      r.relaySaturation = { ...busiest, clients: top.clients }
    })
    await step('dm', async () => { r.dm = await benchDm(n(), { samples: plan.dmSamples, levels: plan.dmLevels, seconds: plan.seconds }) })
    await step('memory', async () => { r.relayMemory = await benchRelayMemory(n(), Number.isFinite(circuitsArg) ? circuitsArg : plan.circuits, profArgs) })
    // its own processes (no server): started after the main network's cases, stopped with it
    await step('echo', async () => {
      const echo = await startEchoNetwork(profArgs)
      r.echo = await benchEcho(echo, { builds: plan.builds, roundTrips: plan.roundTrips, levels: plan.echoLevels, seconds: plan.seconds })
    })
  } finally {
    await stopAll()
  }
  await step('storage', async () => { r.storage = await benchStorage(plan.storeOps) })
  await step('coldstart', async () => { r.coldStart = benchColdStart(quick ? 3 : 10) })
  await step('paths', async () => { r.pathCompromise = await benchPathCompromise(quick) })
  r.targets = checkTargets(r)
  r.durationSeconds = round((nowMs() - t0) / 1000, 1)

  process.stdout.write(render(r))
  mkdirSync(OUT, { recursive: true })
  const json = JSON.stringify(r, null, 2) + '\n'
  // a partial run (--only) never replaces the full run's latest.json
  writeFileSync(join(OUT, only ? 'partial.json' : 'latest.json'), json)
  if (!quick && !only) writeFileSync(join(OUT, `${r.startedAt.replace(/[:.]/g, '-')}.json`), json)
  if (r.throughput && !only) writeFileSync(join(OUT, 'latency-vs-concurrency.svg'), latencyChart(r.throughput, `${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node} — ${r.startedAt.slice(0, 10)}`))
  process.stdout.write(`\nresults: ${join(OUT, only ? 'partial.json' : 'latest.json')} (${r.durationSeconds} s)\n`)
  return r.errors.length ? 1 : 0
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { stopAll().finally(() => process.exit(130)) })
}
process.on('exit', killAllSync)

main().then((code) => { process.exitCode = code }, async (err) => {
  process.stderr.write(`bench failed: ${(err as Error)?.stack ?? err}\n`)
  await stopAll()
  process.exitCode = 1
})
