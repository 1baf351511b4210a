// Prints a run's figures as plain-text tables on stdout.
import type { BenchResults } from './results.js'
import { verdict } from './targets.js'

function table (title: string, head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))]
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) => '  ' + r.map((c, i) => i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])).join('  ')
  return [`\n${title}`, line(head), '  ' + w.map((n) => '-'.repeat(n)).join('  '), ...cells.slice(1).map(line)].join('\n')
}

const pct = (p?: { p50: number, p90: number, p99: number, n: number }) => p ? [p.p50, p.p90, p.p99, p.n] : ['-', '-', '-', '-']

export function render (r: BenchResults): string {
  const m = r.machine
  const parts = [`Marshmello bench (${r.mode}) — ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, Linux ${m.kernel}`]
  if (m.speed) parts.push(`machine speed at the start: SHA-256 ${m.speed.sha256MBps} MB/s, JS loop ${m.speed.jsLoopPerUs} it/µs, TCP ping-pong with another process ${m.speed.tcpPingPongUs} µs`)
  parts.push(table('Latency (ms)', ['measure', 'p50', 'p90', 'p99', 'n'], [
    ['circuit build (3 relays + server)', ...pct(r.circuitBuild)],
    ['room send, onion (3 relays)', ...pct(r.roundTrip?.onion)],
    ['room send, direct API', ...pct(r.roundTrip?.direct)],
    [`delivery (send → long-poll returns; ${r.delivery?.waitMs ?? 3} ms after the GET)`, ...pct(r.delivery)],
    ['  the sender\'s send in those samples', ...pct(r.delivery?.senderRoundTrip)],
    [`delivery after ${r.delivery?.afterIdle?.waitMs ?? 15} ms idle`, ...pct(r.delivery?.afterIdle)],
    ['  the sender\'s send in those samples', ...pct(r.delivery?.afterIdle?.senderRoundTrip)],
  ]))
  if (r.roundTrip) parts.push(`  onion / direct (p50): ${r.roundTrip.ratioP50} ×`)
  if (r.delivery?.afterIdle) {
    const d = r.delivery
    parts.push(`  delivery / the sender's own send in the same samples (p50): ${(d.p50 / d.senderRoundTrip.p50).toFixed(2)} × (${d.waitMs} ms), ${(d.afterIdle.p50 / d.afterIdle.senderRoundTrip.p50).toFixed(2)} × (${d.afterIdle.waitMs} ms idle)`)
  }
  if (r.throughput) {
    parts.push(table('Throughput (room sends, each client on its own circuit)', ['clients', 'sends/s', 'p50 ms', 'p99 ms', 'errors', 'relay cells/s (r1/r2/r3)', 'cells/CPU-s (r1/r2/r3)', 'CPU server/client', 'CPU µs/send'],
      r.throughput.map((l) => [l.clients, l.sendsPerSec, l.latency.p50, l.latency.p99, l.errors, l.relays.map((x) => x.cellsPerSec).join('/'), l.relays.map((x) => x.cellsPerCpuSecond).join('/'), `${l.serverCpu}/${l.clientCpu}`, l.cpuPerSendUs ?? '-'])))
  }
  if (r.relaySaturation) {
    const s = r.relaySaturation
    parts.push(`  busiest relay at ${s.clients} clients (${s.relay}): ${s.cellsPerSec} cells/s, ${s.cellsPerCpuSecond} cells per CPU-second, ${Math.round(s.cpuUtilisation * 100)}% of a core`)
  }
  if (r.dm) {
    const d = r.dm
    parts.push(table('Direct messages through the onion (the real client: ratchet, sealed envelope, delivery token, local log)', ['measure', 'p50', 'p90', 'p99', 'n'], [
      ['DM send (sealed, anonymous circuit)', ...pct(d.send)],
      ['room send by the same client', ...pct(d.roomSend)],
      ['DM receive (read one new DM: open, decrypt, log, ack)', ...pct(d.receive)],
    ]))
    parts.push(`  DM send / room send (p50): ${d.ratioP50} ×`)
    parts.push(table('Direct messages: closed loop, clients in pairs, each sending to its partner; then the same clients sending room messages', ['clients', 'DMs/s', 'DM p50 ms', 'DM p99 ms', 'room sends/s', 'room p50 ms', 'room p99 ms', 'errors'],
      d.throughput.map((l) => [l.clients, l.dmsPerSec, l.dmLatency.p50, l.dmLatency.p99, l.roomSendsPerSec, l.roomLatency.p50, l.roomLatency.p99, l.errors])))
  }
  if (r.echo) {
    const e = r.echo
    parts.push(table('Onion only: three relays and an echo final hop (no auth, no store; ~200-byte request)', ['measure', 'p50', 'p90', 'p99', 'n'], [
      ['circuit build (3 relays + echo hop)', ...pct(e.circuitBuild)],
      ['echo round trip (warm circuit)', ...pct(e.roundTrip)],
    ]))
    parts.push(table('Onion only: closed-loop echo requests, each client on its own circuit', ['clients', 'requests/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors'],
      e.throughput.map((l) => [l.clients, l.sendsPerSec, l.latency.p50, l.latency.p90, l.latency.p99, l.errors])))
  }
  if (r.relayMemory) {
    parts.push(table('Relay memory per idle circuit (VmRSS)', ['circuits', 'RSS MiB', 'bytes/circuit'],
      r.relayMemory.points.map((p) => [p.circuits, (p.rssBytes / 2 ** 20).toFixed(1), p.bytesPerCircuit])))
    parts.push(`  slope over the last step: ${r.relayMemory.slopeBytesPerCircuit} B/circuit; CREATEs handled: ${r.relayMemory.createsPerSec}/s${r.relayMemory.note ? `\n  NOTE: ${r.relayMemory.note}` : ''}`)
  }
  if (r.storage) {
    parts.push(table('Storage (8 in flight)', ['store', 'write', 'writes/s', 'read', 'reads/s', 'note'],
      r.storage.map((s) => [s.store, s.writeOp, s.writesPerSec ?? '-', s.readOp, s.readsPerSec ?? '-', s.note ?? ''])))
  }
  if (r.pathCompromise) {
    const pc = r.pathCompromise
    parts.push(`\nPath compromise over 30 simulated days (${pc.clients.new} new-code clients, ${pc.clients.old} old-code clients; bench/lib/path-sim.ts)\n${pc.table}`)
  }
  if (r.coldStart) {
    parts.push('\nCold start (median of 10)')
    parts.push('skipped' in r.coldStart ? `  ${r.coldStart.skipped}` : `  dist/marshmello --version: ${r.coldStart.binaryMs} ms; node -e 0: ${r.coldStart.nodeMs} ms (${r.coldStart.ratio} ×)`)
  }
  if (r.targets) parts.push(table('Targets', ['target', 'figure', 'verdict'], r.targets.map((t) => [t.target, t.figure, verdict(t.met)])))
  for (const e of r.errors) parts.push(`\nERROR in ${e.case}: ${e.message}`)
  return parts.join('\n') + '\n'
}
