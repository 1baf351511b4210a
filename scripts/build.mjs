// Bundles the web UI's browser code (src/roles/client/web/ui/, scripts/web-bundle.mjs)
// into build/web/app.js, then src/cli.ts into build/cli.js (ESM, dependencies left
// external, the web bundle embedded as text) so that bin/marshmello runs without a
// TypeScript loader. Fast (~200 ms): run before tests.
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { buildWebBundle, webBundlePlugin } from './web-bundle.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
await buildWebBundle()
await build({
  entryPoints: [join(root, 'src/cli.ts')],
  outfile: join(root, 'build/cli.js'),
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
