// A command in a real pseudo-terminal (util-linux `script`), for the terminal chat's
// tests: what is typed goes to its terminal, everything it writes is collected raw (to
// look for escape sequences) and rendered into the lines a user sees (enough of VT100
// for readline).
import { spawn, spawnSync } from 'node:child_process'
import { BIN } from '../../helpers/net.js'

export const hasScript = spawnSync('script', ['--version']).status === 0

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

export interface Terminal {
  child: ReturnType<typeof spawn>
  exited: Promise<number | null>
  /** everything written to the terminal, raw */
  output: () => string
  type: (s: string) => void
  /** waits until `re` matches the screen rendered from the output after `from` (an offset into it) */
  waitFor: (re: RegExp, from?: number, ms?: number) => Promise<RegExpMatchArray>
}

export function terminal (args: string[], env: Record<string, string>): Terminal {
  const cmd = `stty cols ${COLS} rows 50; exec ${[process.execPath, BIN, ...args].map(quote).join(' ')}`
  const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
    env: { ...process.env, NODE_OPTIONS: '', TERM: 'xterm', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    child,
    exited,
    output: () => out,
    type: (s: string) => { child.stdin!.write(s) },
    waitFor: async (re: RegExp, from = 0, ms = 20_000): Promise<RegExpMatchArray> => {
      const end = Date.now() + ms
      for (;;) {
        const m = render(out.slice(from)).match(re)
        if (m) return m
        if (Date.now() > end || child.exitCode !== null) throw new Error(`no ${re} in the terminal:\n${render(out.slice(from))}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
  }
}

/** the terminal's width (stty cols in terminal()); render wraps there as the terminal does */
export const COLS = 160

/** renders a terminal byte stream into the lines a user sees (enough of VT100 for readline) */
export function render (raw: string): string {
  const lines: string[][] = [[]]
  let row = 0
  let col = 0
  const re = /\x1b\[(\d*)([A-Za-z])|\x1b[^[]|\r|\n|\x07|[^\x1b\r\n\x07]/gu
  for (const m of raw.matchAll(re)) {
    const s = m[0]
    if (m[2]) {
      const n = m[1] === '' ? undefined : Number(m[1])
      switch (m[2]) {
        case 'G': col = (n ?? 1) - 1; break
        case 'C': col += n ?? 1; break
        case 'D': col = Math.max(0, col - (n ?? 1)); break
        case 'A': row = Math.max(0, row - (n ?? 1)); break
        case 'B': row += n ?? 1; break
        case 'K': if ((n ?? 0) === 2) lines[row] = []; else lines[row].length = Math.min(lines[row].length, col); break
        case 'J': lines[row].length = Math.min(lines[row].length, col); lines.length = row + 1; break
      }
      while (lines.length <= row) lines.push([])
    } else if (s === '\r') col = 0
    else if (s === '\n') { row++; col = 0; while (lines.length <= row) lines.push([]) } else if (s.startsWith('\x1b') || s === '\x07') { /* other escapes: ignored */ } else {
      if (col >= COLS) { row++; col = 0; while (lines.length <= row) lines.push([]) } // the pending wrap of a full line
      const line = lines[row]
      while (line.length < col) line.push(' ')
      line[col++] = s
    }
  }
  return lines.map((l) => l.join('').trimEnd()).join('\n').replace(/\n+$/, '\n')
}

/**
 * What in a raw terminal stream would act on the terminal beyond readline's own line
 * editing (cursor moves, erase in line/below, bracketed paste): OSC (title), erase
 * display (ESC[2J, ESC[3J, ESC c), SGR colours, C1 CSI/OSC, BEL. Empty when none.
 */
export function foreignControls (raw: string): string[] {
  const found: string[] = []
  for (const m of raw.matchAll(/\x1b\](?:[^\x07\x1b]*)|\x1b\[[0-9;]*[2-3]J|\x1bc|\x1b\[[0-9;]*m|[\x9b\x9d]|\x07/g)) found.push(JSON.stringify(m[0]))
  return found
}
