// Builds dist/marshmello, one executable with no Node install needed (docs/ARCHITECTURE.md §11):
// esbuild bundles the CLI into one CommonJS file, Node's single executable
// application support (SEA) turns it into a blob with a V8 code cache and the
// better-sqlite3 addon as an asset, and postject injects the blob into a copy of
// this node binary. Linux/macOS only; the binary needs the glibc it was built with.
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { webBundlePlugin } from './web-bundle.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const work = join(root, 'build', 'sea')
const out = join(root, 'dist', 'marshmello')
const addon = join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const t0 = Date.now()
const step = (msg) => console.log(`build-binary: ${msg} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)

const [major] = process.versions.node.split('.').map(Number)
if (major < 24) {
  // the binary embeds the node that runs this script: it must be the project's Node 24
  console.error(`build-binary: this is Node ${process.versions.node}; run it as npm run build:binary (the project's Node 24)`)
  process.exit(1)
}
if (!existsSync(addon)) {
  console.error(`build-binary: ${addon} is missing; run npm ci (better-sqlite3 compiles its addon)`)
  process.exit(1)
}
// never leave a stale binary behind a failed build
rmSync(out, { force: true })
rmSync(work, { recursive: true, force: true })
mkdirSync(work, { recursive: true })
mkdirSync(dirname(out), { recursive: true })

/* optional native/peer modules the libraries probe inside try/catch (ws, pg, mongodb):
   a SEA's require() loads built-ins only and warns on anything else, so each becomes
   a module that throws MODULE_NOT_FOUND when required, which they already handle */
const OPTIONAL = ['kerberos', '@mongodb-js/zstd', 'snappy', 'mongodb-client-encryption', '@aws-sdk/credential-providers',
  'gcp-metadata', 'socks', 'aws4', 'pg-native', 'bufferutil', 'utf-8-validate', 'pino-pretty']
const absentOptionals = {
  name: 'absent-optionals',
  setup (b) {
    const filter = new RegExp(`^(${OPTIONAL.map((m) => m.replace(/[/.@-]/g, '\\$&')).join('|')})$`)
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'absent' }))
    b.onLoad({ filter: /.*/, namespace: 'absent' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${args.path}' (not part of the single executable)`)}), { code: 'MODULE_NOT_FOUND' })`,
      loader: 'js',
    }))
  },
}

/* 1. one CommonJS file */
const main = join(work, 'marshmello.cjs')
await build({
  entryPoints: [join(root, 'scripts', 'sea-entry.ts')],
  outfile: main,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
  // yargs (ESM-only) reads import.meta.url at load: esbuild would make it {} in CJS
  define: { 'import.meta.url': '__marshmello_import_meta_url' },
  banner: { js: 'var __marshmello_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
  loader: { '.html': 'text', '.css': 'text' },
  // the web UI's browser bundle, as build.mjs (run first by npm run build:binary) wrote it
  plugins: [absentOptionals, webBundlePlugin],
})
step(`bundled ${(statSync(main).size / 1e6).toFixed(1)} MB`)

/* 2. the SEA blob: code cache for a faster cold start, the addon as an asset */
const blob = join(work, 'sea-prep.blob')
const config = join(work, 'sea-config.json')
writeFileSync(config, JSON.stringify({
  main,
  output: blob,
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  useSnapshot: false,
  assets: { 'better_sqlite3.node': addon },
}, null, 2))
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' })
step(`blob ${(statSync(blob).size / 1e6).toFixed(1)} MB`)

/* 3. a copy of this node with the blob injected */
copyFileSync(process.execPath, out)
chmodSync(out, 0o755)
if (process.platform === 'darwin') execFileSync('codesign', ['--remove-signature', out])
const postject = join(dirname(createRequire(import.meta.url).resolve('postject/package.json')), 'dist', 'cli.js')
const args = [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE, ...(process.platform === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : [])]
// postject warns "Can't find string offset for section name '.note.100'": harmless
const res = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
if (res.trim()) console.log(res.split('\n').filter((l) => !l.includes('.note.100')).join('\n').trim())
if (process.platform === 'darwin') execFileSync('codesign', ['--sign', '-', out])

const version = execFileSync(out, ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } }).trim()
step(`wrote ${out} (${(statSync(out).size / 1e6).toFixed(1)} MB), --version says ${version}`)
