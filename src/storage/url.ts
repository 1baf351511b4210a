// Store URLs: the password is cut out before a URL reaches a message or a log line.
// Works on strings, not on WHATWG URL objects, because mongodb:// lists several
// hosts ("a:1,b:2") that `new URL` refuses. Leaves validation to each driver.

const SECRET_PARAM = /^(password|pass|pwd|secret|token|sslpassword)$/i

interface Parts { authorityStart: number, userinfoEnd: number, colon: number }

function parts (url: string): Parts | undefined {
  const scheme = url.indexOf('://')
  if (scheme < 0) return undefined
  const start = scheme + 3
  let end = url.length
  for (const c of ['/', '?', '#']) {
    const i = url.indexOf(c, start)
    if (i >= 0 && i < end) end = i
  }
  const at = url.lastIndexOf('@', end - 1)
  if (at < start) return undefined
  return { authorityStart: start, userinfoEnd: at, colon: url.indexOf(':', start) }
}

/** The decoded password in `url`, if it has one. */
export function urlPassword (url: string): string | undefined {
  const p = parts(url)
  if (p === undefined || p.colon < 0 || p.colon > p.userinfoEnd) return undefined
  const raw = url.slice(p.colon + 1, p.userinfoEnd)
  try { return decodeURIComponent(raw) } catch { return raw }
}

/** `url` with its password (and any password-like query parameter) replaced by `***`. */
export function redactUrl (url: string): string {
  let out = url
  const p = parts(out)
  if (p !== undefined && p.colon >= 0 && p.colon < p.userinfoEnd) {
    out = out.slice(0, p.colon + 1) + '***' + out.slice(p.userinfoEnd)
  }
  const q = out.indexOf('?')
  if (q < 0) return out
  const hash = out.indexOf('#', q)
  const query = out.slice(q + 1, hash < 0 ? undefined : hash)
  const redacted = query.split('&').map(kv => {
    const eq = kv.indexOf('=')
    return eq > 0 && SECRET_PARAM.test(kv.slice(0, eq)) ? kv.slice(0, eq) + '=***' : kv
  }).join('&')
  return out.slice(0, q + 1) + redacted + (hash < 0 ? '' : out.slice(hash))
}
