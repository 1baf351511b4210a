// The terminal as the chat uses it: lines printed above the prompt without disturbing
// what is being typed, every line through safeText (nothing printed can drive the
// terminal, one line stays one line), a prompt that doubles as the status line
// (where you are, unread counts, offline, messages waiting to go), and questions
// asked before the chat starts (plain, or without echo for passwords).
import readline from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { safeText } from './safe-text.js'

export class Screen {
  private rl: readline.Interface | null = null
  private promptText = '> '

  constructor (private readonly input: Readable & { isTTY?: boolean, setRawMode?: (on: boolean) => unknown }, private readonly output: Writable) {}

  /** prints lines (each made safe) above the prompt */
  say (...lines: string[]): void {
    const text = lines.flatMap((l) => l.split('\n')).map(safeText).join('\n') + '\n'
    if (!this.rl) { this.output.write(text); return }
    readline.clearLine(this.output, 0)
    readline.cursorTo(this.output, 0)
    this.output.write(text)
    this.rl.prompt(true)
  }

  /** one answer, echoed (before the chat starts) */
  ask (question: string): Promise<string> {
    return new Promise((resolve) => {
      const r = readline.createInterface({ input: this.input, output: this.output, terminal: true })
      r.question(safeText(question), (ans) => { r.close(); resolve(ans.trim()) })
    })
  }

  /** the line editor of the chat; 'line' for each line typed, 'close' on Ctrl-D */
  start (onLine: (line: string) => void, onClose: () => void): void {
    this.rl = readline.createInterface({ input: this.input, output: this.output, terminal: true, historySize: 100 })
    this.rl.setPrompt(this.promptText)
    this.rl.on('line', onLine)
    this.rl.on('close', onClose)
    this.rl.prompt()
  }

  /** the status line: redrawn in place, keeping what is being typed */
  setPrompt (text: string): void {
    const next = safeText(text)
    if (next === this.promptText) return
    this.promptText = next
    if (!this.rl) return
    this.rl.setPrompt(next)
    readline.clearLine(this.output, 0)
    readline.cursorTo(this.output, 0)
    this.rl.prompt(true)
  }

  prompt (): void { this.rl?.prompt(true) }

  /** puts text back into the input line, to edit and send again */
  putBack (text: string): void { this.rl?.write(text) }

  close (): void {
    const rl = this.rl
    this.rl = null
    rl?.close()
  }
}
