// The error registry (src/error-codes.ts) against docs/PROTOCOL.md §9 and the source:
// every registered code is listed in §9 with the same kind and status and vice versa,
// every MM_ERR_* code written in src/ is registered, and MarshmelloError takes its
// kind and status from the registry.
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ERRORS, MarshmelloError, isErrorCode, lengthError } from '../src/errors.js'

const ROOT = join(import.meta.dirname, '..')

function protocolSection9 (): Map<string, { kind: string, status: number }> {
  const doc = readFileSync(join(ROOT, 'docs/PROTOCOL.md'), 'utf8')
  const start = doc.indexOf('## 9. Error codes')
  const end = doc.indexOf('\n## 10.', start)
  const rows = new Map<string, { kind: string, status: number }>()
  for (const m of doc.slice(start, end).matchAll(/^\| (MM_ERR_[A-Z0-9_]+) \| ([a-z-]+) \| (\d{3}) \| .+ \|$/gm)) {
    if (rows.has(m[1])) throw new Error(`${m[1]} listed twice in §9`)
    rows.set(m[1], { kind: m[2], status: Number(m[3]) })
  }
  return rows
}

function * sourceFiles (dir: string): Generator<string> {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n)
    if (statSync(p).isDirectory()) yield * sourceFiles(p)
    else if (/\.(ts|js)$/.test(n)) yield p
  }
}

t.test('PROTOCOL §9 lists exactly the registry, with the same kind and status', async t => {
  const doc = protocolSection9()
  t.ok(doc.size > 50, `§9 parsed (${doc.size} rows)`)
  const missing = Object.keys(ERRORS).filter((c) => !doc.has(c))
  const extra = [...doc.keys()].filter((c) => !isErrorCode(c))
  t.same(missing, [], 'every registry code is in §9')
  t.same(extra, [], 'every §9 code is in the registry')
  const differ = Object.entries(ERRORS)
    .filter(([c, s]) => doc.has(c) && (doc.get(c)!.kind !== s.kind || doc.get(c)!.status !== s.status))
    .map(([c]) => c)
  t.same(differ, [], 'kinds and statuses agree')
})

t.test('every MM_ERR_* code written in src/ is in the registry', async t => {
  const unknown = new Set<string>()
  let seen = 0
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    // a code ends at a non-code character; `'MM_ERR_WEB_'` as a prefix test is not a code
    for (const m of readFileSync(file, 'utf8').matchAll(/MM_ERR_[A-Z0-9_]*[A-Z0-9]\b(?!_)/g)) {
      seen++
      if (!isErrorCode(m[0])) unknown.add(`${m[0]} (${file.slice(ROOT.length + 1)})`)
    }
  }
  t.ok(seen > 200, `codes found in src (${seen})`)
  t.same([...unknown], [])
})

t.test('a registry entry is well formed', async t => {
  const bad = Object.entries(ERRORS).filter(([, s]) =>
    !['protocol', 'bad-input', 'auth', 'storage', 'unavailable', 'internal'].includes(s.kind) ||
    !(s.status >= 400 && s.status <= 599) || s.when.length < 10)
  t.same(bad.map(([c]) => c), [])
})

t.test('MarshmelloError takes kind and status from the registry', async t => {
  const e = new MarshmelloError('MM_ERR_VALIDATION', 'x')
  t.equal(e.code, 'MM_ERR_VALIDATION')
  t.equal(e.kind, 'bad-input')
  t.equal(e.statusCode, 400)
  t.ok(e instanceof Error)
  t.equal(new MarshmelloError('MM_ERR_USER_EXISTS', 'x').statusCode, 409)
  t.equal(new MarshmelloError('MM_ERR_STORE_UNAVAILABLE', 'x').kind, 'unavailable')
  t.equal(lengthError('key', '32', 31).code, 'MM_ERR_LENGTH')
  const cause = new Error('inner')
  t.equal(new MarshmelloError('MM_ERR_INTERNAL', 'x', { cause }).cause, cause)
  t.same(new MarshmelloError('MM_ERR_KEY_CHANGED', 'x', { details: { username: 'bob' } }).details, { username: 'bob' })
  t.equal(isErrorCode('MM_ERR_NOPE'), false)
  t.equal(isErrorCode('toString'), false, 'no inherited names')
})
