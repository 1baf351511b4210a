// The web UI's browser code is TypeScript under src/roles/client/web/ui/, bundled by
// scripts/web-bundle.mjs: no hand-written browser script is left, the bundle on disk
// is what its sources build to now, and what `chat --web` serves at /app.js is that
// bundle, byte for byte, with no way to turn text into markup or code in it.
import t from 'tap'
import { build } from 'esbuild'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { WEB_BUNDLE, webBundleOptions } from '../../../../scripts/web-bundle.mjs'
import { ROOT, run, tmp } from '../../../helpers/net.js'

const WEB = join(ROOT, 'src', 'roles', 'client', 'web')
/** what must never appear in the page's script: markup from strings, or code from strings */
const FORBIDDEN = [/\binnerHTML\b/, /\bouterHTML\b/, /\binsertAdjacentHTML\b/, /\bdocument\.write/, /\beval\b/, /\bnew Function\b/, /\bFunction\(/, /\bsetTimeout\(\s*["'`]/, /\bcreateContextualFragment\b/, /\bDOMParser\b/]

function get (port: number, path: string): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}` } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('the browser code is TypeScript: no .js left in the web UI sources', async (t) => {
  t.notOk(existsSync(join(WEB, 'app.client.js')), 'app.client.js is gone')
  const js = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? js(join(dir, e.name)) : /\.[cm]?js$/.test(e.name) ? [join(dir, e.name)] : [])
  t.same(js(WEB), [], 'no JavaScript file under src/roles/client/web')
  t.ok(existsSync(join(WEB, 'ui', 'main.ts')), 'the entry point is ui/main.ts')
})

t.test('build/web/app.js is what the TypeScript sources build to', async (t) => {
  t.ok(existsSync(WEB_BUNDLE), 'built (node scripts/build.mjs)')
  const fresh = await build({ ...webBundleOptions, write: false })
  t.equal(fresh.outputFiles.length, 1)
  t.equal(readFileSync(WEB_BUNDLE, 'utf8'), fresh.outputFiles[0].text, 'the bundle on disk is current: rebuild with node scripts/build.mjs')
  const inputs = Object.keys((await build({ ...webBundleOptions, write: false, metafile: true })).metafile!.inputs)
  t.ok(inputs.includes('src/roles/client/web/ui/main.ts'), 'built from ui/main.ts')
  t.ok(inputs.includes('src/names.ts'), 'with the shared name rules')
  t.same(inputs.filter((f) => !f.endsWith('.ts')), [], 'from TypeScript only')
  t.same(inputs.filter((f) => !f.startsWith('src/roles/client/web/ui/') && f !== 'src/names.ts' && f !== 'src/limits.ts'), [], 'and nothing of the server side but the shared name and size rules (event and wire types are type-only imports)')
})

t.test('chat --web serves that bundle, free of markup and code from strings', async (t) => {
  // no network configured: the UI still starts and serves its page
  const proc = run(['chat', '--web', '--home', tmp('mm-web-bundle-')])
  t.teardown(() => proc.kill('SIGTERM'))
  const m = await proc.waitFor(/web UI on http:\/\/127\.0\.0\.1:(\d+)\/#token=/)
  const port = Number(m[1])
  const js = await get(port, '/app.js')
  t.equal(js.status, 200)
  t.match(String(js.headers['content-type']), /^text\/javascript/)
  t.match(String(js.headers['content-security-policy']), /script-src 'self'/, 'under the CSP')
  t.equal(js.body, readFileSync(WEB_BUNDLE, 'utf8'), 'the served script is build/web/app.js')
  t.match(js.body, /\/\/ src\/roles\/client\/web\/ui\/main\.ts/, 'bundled from ui/main.ts')
  for (const re of FORBIDDEN) t.notMatch(js.body, re, `no ${re.source}`)
  const page = await get(port, '/')
  t.match(page.body, /<script src="\/app\.js" defer><\/script>/, 'the page loads it from /app.js')
  t.notMatch(page.body, /<script>|<script [^>]*>[^<]+<\/script>|\son[a-z]+=/i, 'and has no inline script or handler')
})
