// Bundles the web UI's browser code (src/roles/client/web/ui/, scripts/web-bundle.mjs)
// into build/web/app.js, then src/cli.ts into build/cli.js (ESM, dependencies left
// external, the web bundle embedded as text) so that bin/marshmello runs without a
// TypeScript loader. Fast (~200 ms): run before tests.
// Split into chunks (build/chunks/): a module the sources import lazily (`await
// import(…)`: a role's implementation, a store driver, the terminal UI) is loaded only
// when used, with the packages it imports, so `send` or `read` starts without fastify,
// mongodb, pg or ioredis (one bundle would import every package at start-up).
import { build } from 'esbuild'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { buildWebBundle, webBundlePlugin } from './web-bundle.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
await buildWebBundle()
// chunk names carry a content hash: the previous build's would pile up
rmSync(join(root, 'build/chunks'), { recursive: true, force: true })
await build({
  entryPoints: [join(root, 'src/cli.ts')],
  outdir: join(root, 'build'),
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  loader: { '.html': 'text', '.css': 'text' },
  plugins: [webBundlePlugin],
})
