// Bundles src/cli.ts into build/cli.js (ESM, dependencies left external) so that
// bin/marshmello runs without a TypeScript loader. Fast (~100 ms): run before tests.
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
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
  loader: { '.html': 'text', '.css': 'text', '.client.js': 'text' },
})
