// The machine a bench ran on: CPU model (/proc/cpuinfo), cores, memory, Node and kernel,
// and three speed probes taken at the start of the run (~1 s): SHA-256 over 2 KiB
// buffers (native crypto, one core), a tight JS loop (JIT code, one core), and a loopback
// TCP ping-pong with a child process (syscalls and waking another process, which every
// onion hop pays). They tell two machines apart; they do not catch the host's load
// changing during a run (this VM kind has measured 16-client throughput 1.7x apart
// within one session with the same probe figures), so compare runs side by side.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus, release, totalmem } from 'node:os'

export interface MachineSpeed {
  /** SHA-256 throughput over 2 KiB buffers, MB/s, one core */
  sha256MBps: number
  /** iterations per microsecond of a fixed integer loop */
  jsLoopPerUs: number
  /** median round trip of a 64-byte TCP ping-pong with another process, µs */
  tcpPingPongUs: number
}

export interface Machine { cpu: string, cores: number, memoryGiB: number, node: string, kernel: string, speed?: MachineSpeed }

export function machine (): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)
    if (m) cpu = m[1].trim()
  } catch {}
  return { cpu, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() }
}

const now = () => Number(process.hrtime.bigint()) / 1e6

function sha256MBps (ms: number): number {
  const buf = Buffer.alloc(2048, 0x5a)
  for (let i = 0; i < 200; i++) createHash('sha256').update(buf).digest() // warm
  let n = 0
  const t0 = now()
  while (now() - t0 < ms) {
    for (let i = 0; i < 100; i++) createHash('sha256').update(buf).digest()
    n += 100
  }
  return Math.round((n * 2048) / ((now() - t0) * 1000))
}

function jsLoopPerUs (): number {
  let best = Infinity
  let x = 0
  for (let r = 0; r < 5; r++) {
    const t0 = now()
    for (let i = 0; i < 2e7; i++) x = (x * 31 + i) | 0
    best = Math.min(best, now() - t0)
  }
  if (x === 42) process.stdout.write('') // keep the loop from being optimised away
  return Math.round(2e7 / (best * 1000))
}

const ECHO = "require('net').createServer(s=>s.on('data',d=>s.write(d))).listen(0,'127.0.0.1',function(){process.stdout.write(this.address().port+'\\n')})"

async function tcpPingPongUs (rounds: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
    })
    const sock = connect({ host: '127.0.0.1', port, noDelay: true })
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
    const msg = Buffer.alloc(64, 1)
    const times: number[] = []
    for (let i = 0; i < rounds; i++) {
      const t0 = now()
      await new Promise<void>((resolve) => {
        let got = 0
        const onData = (d: Buffer) => { got += d.length; if (got >= msg.length) { sock.off('data', onData); resolve() } }
        sock.on('data', onData)
        sock.write(msg)
      })
      times.push(now() - t0)
    }
    sock.destroy()
    times.sort((a, b) => a - b)
    return Math.round(times[Math.floor(times.length / 2)] * 1000)
  } finally {
    child.kill()
  }
}

/** the three speed probes (about a second) */
export async function machineSpeed (): Promise<MachineSpeed> {
  return { sha256MBps: sha256MBps(300), jsLoopPerUs: jsLoopPerUs(), tcpPingPongUs: await tcpPingPongUs(2000) }
}
