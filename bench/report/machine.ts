// The machine a bench ran on: CPU model (/proc/cpuinfo), cores, memory, Node and kernel.
import { readFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'

export interface Machine { cpu: string, cores: number, memoryGiB: number, node: string, kernel: string }

export function machine (): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)
    if (m) cpu = m[1].trim()
  } catch {}
  return { cpu, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() }
}
