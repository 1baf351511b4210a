// How the user runs this same program from where they stand, for the devnet's
// "connect with" lines: `marshmello` when that name on their own PATH is this program
// (installed), `npx marshmello` inside the checkout or the project that installed it,
// else the program's path (the single executable, or bin/marshmello), relative when
// it lies below their directory. Under npm (`npm run devnet`, npx) the user stands
// in INIT_CWD, not in the package root npm moved to.
import { accessSync, constants, readFileSync, realpathSync, statSync } from 'node:fs'
import { delimiter, dirname, isAbsolute, join, relative, sep } from 'node:path'
import { isSea } from '../common/sea.js'

export interface Invocation {
  /** where the user stands: the commands below run from there */
  cwd: string
  /** the words that start this program from there: `marshmello`, `npx marshmello`, or a path */
  prefix: string
}

export interface InvocationSource {
  cwd: string
  env: NodeJS.ProcessEnv
  sea: boolean
  execPath: string
  /** the script node runs (process.argv[1]): build/cli.js or bin/marshmello */
  script?: string
}

const current = (): InvocationSource => ({ cwd: process.cwd(), env: process.env, sea: isSea(), execPath: process.execPath, script: process.argv[1] })

const real = (p: string): string | undefined => { try { return realpathSync(p) } catch { return undefined } }

export const isInside = (path: string, dir: string): boolean => {
  const r = relative(dir, path)
  return r === '' || (!r.startsWith('..') && !isAbsolute(r))
}

/** one word for a POSIX shell */
export function shellQuote (s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`
}

/** the user's own PATH: without the node_modules/.bin dirs (and node-gyp-bin) npm puts first for scripts and npx */
function userPath (env: NodeJS.ProcessEnv): string[] {
  const underNpm = env.npm_lifecycle_event !== undefined || env.npm_command !== undefined
  return (env.PATH ?? '').split(delimiter).filter((d) => d !== '' && !(underNpm && /(node_modules[\\/]\.bin|node-gyp-bin)[\\/]?$/.test(d)))
}

function onPath (target: string, env: NodeJS.ProcessEnv): boolean {
  return userPath(env).some((d) => {
    const f = join(d, 'marshmello')
    if (real(f) !== target) return false
    try { accessSync(f, constants.X_OK); return true } catch { return false }
  })
}

/** the nearest directory above `file` whose package.json is this package's */
function packageRoot (file: string): string | undefined {
  for (let d = dirname(file); ; d = dirname(d)) {
    try {
      if ((JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')) as { name?: unknown }).name === 'marshmello') return d
    } catch { /* none here */ }
    if (dirname(d) === d) return undefined
  }
}

/** where the user stands: npm runs scripts from the package root and keeps theirs in INIT_CWD (an inherited one is ignored elsewhere) */
function userCwd (o: InvocationSource, root: string | undefined): string {
  const init = o.env.INIT_CWD
  if (root && init && isAbsolute(init) && real(o.cwd) === real(root)) {
    try { if (statSync(init).isDirectory()) return init } catch { /* gone: use ours */ }
  }
  return o.cwd
}

export function invocation (o: InvocationSource = current()): Invocation {
  const script = !o.sea && o.script ? real(o.script) ?? o.script : undefined
  const root = script ? packageRoot(script) : undefined
  const cwd = userCwd(o, root)
  const pathTo = (f: string) => shellQuote(isInside(f, cwd) ? `./${relative(cwd, f)}` : f)
  if (o.sea) {
    const exe = real(o.execPath) ?? o.execPath
    return { cwd, prefix: onPath(exe, o.env) ? 'marshmello' : pathTo(exe) }
  }
  if (!root) return { cwd, prefix: `${shellQuote(o.execPath)} ${shellQuote(script ?? 'marshmello')}` }
  const bin = join(root, 'bin', 'marshmello')
  if (onPath(real(bin) ?? bin, o.env)) return { cwd, prefix: 'marshmello' }
  // npx finds the program in the checkout itself, or in the project whose node_modules holds it
  const parts = root.split(sep)
  const nm = parts.lastIndexOf('node_modules')
  const project = nm > 0 ? parts.slice(0, nm).join(sep) || sep : root
  if (isInside(cwd, project)) return { cwd, prefix: 'npx marshmello' }
  return { cwd, prefix: pathTo(bin) }
}

/** a directory argument as the user would type it from cwd */
export const dirArg = (dir: string, cwd: string): string => shellQuote(isInside(dir, cwd) ? (relative(cwd, dir) || '.') : dir)
