// The one logging path. Every line goes through redact(), which drops fields whose
// names say they carry a secret (keys, tokens, passwords, bodies, addresses of
// clients); callers still never pass plaintext. Lines are JSON or plain text.

const SECRET = /pass|token|secret|key|auth|body|text|plaintext|cookie|jwt|sig/i

export type Level = 'debug' | 'info' | 'warn' | 'error'
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface Logger {
  debug (msg: string, fields?: Record<string, unknown>): void
  info (msg: string, fields?: Record<string, unknown>): void
  warn (msg: string, fields?: Record<string, unknown>): void
  error (msg: string, fields?: Record<string, unknown>): void
  child (fields: Record<string, unknown>): Logger
}

export function redact (fields: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET.test(k) && !/^(keyFingerprint|fingerprint)$/.test(k)) { out[k] = '[redacted]'; continue }
    if (v instanceof Error) { out[k] = (v as any).code ?? v.message; continue }
    if (Buffer.isBuffer(v) || v instanceof Uint8Array) { out[k] = `[${v.length} bytes]`; continue }
    out[k] = v
  }
  return out
}

export interface LoggerInit {
  level?: Level
  json?: boolean
  name?: string
  /** where lines go; default stderr */
  write?: (line: string) => void
}

export function createLogger (init: LoggerInit = {}, base: Record<string, unknown> = {}): Logger {
  const min = ORDER[init.level ?? (process.env.MARSHMELLO_LOG_LEVEL as Level) ?? 'info'] ?? 20
  const write = init.write ?? ((line: string) => process.stderr.write(line + '\n'))
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return
    const f = redact({ ...base, ...fields })
    if (init.json) {
      write(JSON.stringify({ t: new Date().toISOString(), level, name: init.name, msg, ...f }))
    } else {
      const extra = Object.entries(f).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
      write(`${init.name ? `[${init.name}] ` : ''}${level === 'info' ? '' : level.toUpperCase() + ' '}${msg}${extra ? ' ' + extra : ''}`)
    }
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(init, { ...base, ...fields }),
  }
}

/** A logger that drops everything (tests, quiet mode). */
export const silentLogger: Logger = {
  debug () {}, info () {}, warn () {}, error () {}, child () { return silentLogger },
}
