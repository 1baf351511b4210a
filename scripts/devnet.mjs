// `npm run devnet [-- FLAGS]`: builds build/cli.js, then runs `marshmello devnet FLAGS`
// in this same process. package.json runs it as `exec node scripts/devnet.mjs`, so the
// shell npm starts scripts with becomes this process and npm's forwarded SIGINT or
// SIGTERM reaches the devnet itself, which stops every child. Should a shell stay in
// between (another script-shell; dash runs `a && b` as a child and dies of the signal
// alone), this process also watches its parent, and npm above such a shell: when one
// goes, it stops the devnet as on SIGTERM.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const proc = (pid, what) => { try { return readFileSync(`/proc/${pid}/${what}`, 'utf8') } catch { return '' } }
/** the parent pid of pid (Linux /proc), or 0 */
const parentOf = (pid) => { const stat = proc(pid, 'stat'); return stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : 0 }
const alive = (pid) => { try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' } }

const parent = process.ppid
const grandparent = parentOf(parent)
// npm -> sh -c -> this: npm too (a shell that catches SIGINT would wait for us forever)
const underShellOfNpm = /^(sh|dash|bash|ash|zsh|ksh|mksh)\n?$/.test(proc(parent, 'comm')) && /npm/.test(proc(grandparent, 'cmdline'))
const watched = underShellOfNpm ? [grandparent] : []
let gone = false
setInterval(() => {
  if (gone) return
  if (process.ppid !== parent || !watched.every(alive)) {
    gone = true
    // before the devnet installs its handlers (during the build) this simply ends us
    process.kill(process.pid, 'SIGTERM')
  }
}, 250).unref()

await import('./build.mjs')
// esbuild's service process would otherwise idle beside the devnet until it ends
await (await import('esbuild')).stop()

const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  console.error(`npm run devnet: needs Node 24 (this is ${process.versions.node}); run npm install, which brings it into node_modules/.bin`)
  process.exit(2)
}
const cli = join(root, 'build', 'cli.js')
// the CLI reads process.argv (yargs' hideBin), and the devnet starts its children as `node <argv[1]> …`
process.argv = [process.argv[0], cli, 'devnet', ...process.argv.slice(2)]
await import(cli)
