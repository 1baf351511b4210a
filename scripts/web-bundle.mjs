// The web UI's browser code as one script: esbuild bundles src/roles/client/web/ui/
// main.ts (TypeScript, type-checked with the rest by tsc) for the browser into
// build/web/app.js. The CLI bundles (build.mjs, build-binary.mjs) embed that file as
// text through `webBundlePlugin`, so `marshmello chat --web` and the single binary
// serve the same bytes at /app.js. Leaves out the page and stylesheet (plain text).
import { build } from 'esbuild'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const WEB_ENTRY = join(root, 'src/roles/client/web/ui/main.ts')
export const WEB_BUNDLE = join(root, 'build/web/app.js')

/** esbuild options of the browser bundle (test/roles/client/web/bundle.test.ts rebuilds with them) */
export const webBundleOptions = {
  // paths in the bundle's comments are relative to the root, whatever the cwd
  absWorkingDir: root,
  entryPoints: [WEB_ENTRY],
  outfile: WEB_BUNDLE,
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  charset: 'utf8',
  legalComments: 'none',
  logLevel: 'warning',
}

export async function buildWebBundle () {
  await build(webBundleOptions)
}

/** resolves `import js from 'marshmello:web-bundle'` (web/server.ts) to the bundle's text */
export const webBundlePlugin = {
  name: 'web-bundle',
  setup (b) {
    b.onResolve({ filter: /^marshmello:web-bundle$/ }, () => ({ path: WEB_BUNDLE, namespace: 'web-bundle' }))
    b.onLoad({ filter: /.*/, namespace: 'web-bundle' }, () => {
      if (!existsSync(WEB_BUNDLE)) return { errors: [{ text: `${WEB_BUNDLE} is missing: run node scripts/build.mjs first` }] }
      return { contents: readFileSync(WEB_BUNDLE, 'utf8'), loader: 'text', watchFiles: [WEB_BUNDLE] }
    })
  },
}
