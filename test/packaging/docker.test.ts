// Dockerfile and docker-compose.yml against the CLI they run: every subcommand and
// --flag (and every MARSHMELLO_* variable, which yargs maps to a flag) must appear in
// that subcommand's --help; the runtime stage is a non-root user running the binary;
// each service sits on its intended networks (auth/messages never on the edge) and
// the internal token reaches services only as a secret file.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { parse } from 'yaml'
import { BIN, ROOT } from '../helpers/net.js'

const helpCache = new Map<string, string>()
function help (sub: string): string {
  if (!helpCache.has(sub)) {
    const r = spawnSync(process.execPath, [BIN, ...(sub ? [sub] : []), '--help'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 30_000 })
    if (r.status !== 0) throw new Error(`marshmello ${sub} --help failed (${r.status}): ${r.stderr}`)
    helpCache.set(sub, r.stdout)
  }
  return helpCache.get(sub)!
}
const hasFlag = (sub: string, flag: string) => new RegExp(`(^|\\s)${flag.replace(/[-]/g, '\\-')}(\\s|$)`, 'm').test(help(sub))
const envToFlag = (name: string) => '--' + name.slice('MARSHMELLO_'.length).toLowerCase().replace(/_/g, '-')

/* ---------------- Dockerfile ---------------- */
interface Stage { from: string, name?: string, lines: string[] }
function dockerStages (text: string): Stage[] {
  const joined = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const stages: Stage[] = []
  for (const line of joined) {
    const m = line.match(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i)
    if (m) stages.push({ from: m[1], name: m[2], lines: [] })
    else if (stages.length) stages.at(-1)!.lines.push(line)
    else throw new Error(`instruction before FROM: ${line}`)
  }
  return stages
}

t.test('Dockerfile: multi-stage, binary built then run as a non-root user', async (t) => {
  const stages = dockerStages(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
  t.equal(stages.length, 2, 'two stages')
  const [build, runtime] = stages
  t.equal(build.from, 'node:24-bookworm', 'the image builds on Node 24 LTS, the project runtime')
  t.ok(build.lines.some((l) => /^RUN npm ci\b/.test(l)), 'build: npm ci')
  t.ok(build.lines.some((l) => /^RUN .*npm run build:binary/.test(l)), 'build: npm run build:binary')
  t.equal(runtime.from, 'debian:bookworm-slim')
  t.ok(runtime.lines.some((l) => new RegExp(`^COPY --from=${build.name} \\S*dist/marshmello /usr/local/bin/marshmello$`).test(l)), 'runtime copies only the binary')
  const users = runtime.lines.filter((l) => /^USER\s/.test(l)).map((l) => l.split(/\s+/)[1])
  t.ok(users.length > 0, 'runtime stage sets USER')
  t.equal(users.at(-1), 'marshmello', 'runs as marshmello')
  t.notOk(['root', '0'].includes(users.at(-1)!.split(':')[0]), 'not root')
  t.ok(runtime.lines.some((l) => /useradd .*marshmello/.test(l)), 'the user is created')
  const entry = runtime.lines.find((l) => l.startsWith('ENTRYPOINT'))!
  t.same(JSON.parse(entry.slice('ENTRYPOINT'.length)), ['/usr/local/bin/marshmello'])
  const cmd = runtime.lines.find((l) => l.startsWith('CMD'))
  if (cmd) for (const a of (JSON.parse(cmd.slice(3)) as string[]).filter((x) => x.startsWith('--'))) t.ok(hasFlag('', a), `CMD ${a} is a top-level flag`)
})

/* ---------------- docker-compose.yml ---------------- */
interface Service { image?: string, build?: unknown, command?: string[], environment?: Record<string, string>, networks?: string[] | Record<string, { ipv4_address?: string } | null>, secrets?: string[] }
/** a service's networks, whether listed or mapped (with fixed addresses) */
const netsOf = (s: Service): string[] => Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {})
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service>, networks: Record<string, { internal?: boolean } | null>, secrets: Record<string, { file: string }> }
const ours = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith('marshmello') || s.build !== undefined)

t.test('compose: every subcommand, flag and MARSHMELLO_* variable exists in the CLI', async (t) => {
  t.same(ours.map(([n]) => n).sort(), ['auth', 'directory', 'gateway', 'messages', 'relay1', 'relay2', 'relay3'])
  const root = help('')
  for (const [name, s] of ours) {
    t.ok(Array.isArray(s.command), `${name}: command is an exec-form list`)
    const [sub, ...args] = s.command!
    t.match(root, new RegExp(`marshmello ${sub}\\b`), `${name}: subcommand ${sub} exists`)
    for (const a of args.filter((x) => x.startsWith('--'))) t.ok(hasFlag(sub, a.split('=')[0]), `${name}: ${sub} ${a}`)
    for (const k of Object.keys(s.environment ?? {})) {
      t.match(k, /^MARSHMELLO_/, `${name}: ${k} is a MARSHMELLO_ variable`)
      t.ok(hasFlag(sub, envToFlag(k)), `${name}: ${k} maps to ${sub} ${envToFlag(k)}`)
    }
  }
  const byName = Object.fromEntries(ours)
  for (const svc of ['gateway', 'auth', 'messages', 'directory']) t.same(byName[svc].command!.slice(0, 3), ['server', '--service', svc], `${svc} runs server --service ${svc}`)
  t.match(byName.auth.environment?.MARSHMELLO_USERS, /^postgres:\/\//)
  t.match(byName.messages.environment?.MARSHMELLO_MESSAGES, /^mongodb:\/\//)
  for (const r of ['relay1', 'relay2', 'relay3']) {
    t.equal(byName[r].command![0], 'relay')
    t.ok(byName[r].command!.includes('--directory'), `${r} registers with the directory`)
    t.ok('MARSHMELLO_DIRECTORY_KEY' in (byName[r].environment ?? {}), `${r} pins the directory key`)
    t.match(byName[r].command![byName[r].command!.indexOf('--sessions') + 1], /^redis:\/\//, `${r} keeps sessions in redis`)
  }
})

t.test('compose: networks keep services apart', async (t) => {
  const nets = (n: string) => [...netsOf(compose.services[n])].sort()
  t.same(nets('gateway'), ['edge', 'internal'])
  t.same(nets('directory'), ['edge'])
  t.same(nets('auth'), ['data', 'internal'])
  t.same(nets('messages'), ['data', 'internal'])
  for (const r of ['relay1', 'relay2', 'relay3']) t.same(nets(r), ['edge', 'sessions'], `${r}: edge and sessions only`)
  t.same(nets('postgres'), ['data'])
  t.same(nets('mongo'), ['data'])
  t.same(nets('redis'), ['sessions'])
  for (const n of ['internal', 'data', 'sessions']) t.equal(compose.networks[n]?.internal, true, `${n} has no route out`)
  for (const [name, s] of Object.entries(compose.services)) {
    if (!netsOf(s).includes('edge')) t.notOk((s as { ports?: unknown }).ports, `${name}: no published port off the edge`)
  }
})

t.test('compose: hops publish IP literals they hold on the edge network, and the directory lists that private subnet', async (t) => {
  const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/
  const subnet = (compose.networks.edge as { ipam?: { config?: { subnet?: string }[] } } | null)?.ipam?.config?.[0]?.subnet ?? ''
  const [net, bits] = subnet.split('/')
  t.equal(bits, '24', 'the edge network has a fixed /24')
  for (const name of ['gateway', 'relay1', 'relay2', 'relay3']) {
    const s = compose.services[name]
    const host = s.command![s.command!.indexOf('--host') + 1]
    t.match(host, ipv4, `${name}: --host is an IP literal (descriptors never hold names)`)
    t.equal(host.split('.').slice(0, 3).join('.'), net.split('.').slice(0, 3).join('.'), `${name}: inside the edge subnet`)
    const edge = (s.networks as Record<string, { ipv4_address?: string } | null>).edge
    t.equal(edge?.ipv4_address, host, `${name}: holds that address on the edge network`)
  }
  t.ok(compose.services.directory.command!.includes('--private-network'), 'the directory lists the private edge subnet (--private-network)')
})

t.test('compose: the internal token and JWT secret only as secret files', async (t) => {
  for (const [name, s] of ours) {
    const cmd = s.command!
    t.notOk(cmd.includes('--internal-token'), `${name}: no token on the command line`)
    t.notOk('MARSHMELLO_INTERNAL_TOKEN' in (s.environment ?? {}), `${name}: no token in the environment`)
    for (const flag of ['--internal-token-file', '--token-secret-file']) {
      const i = cmd.indexOf(flag)
      if (i < 0) continue
      const m = cmd[i + 1].match(/^\/run\/secrets\/(\w+)$/)
      t.ok(m, `${name}: ${flag} reads /run/secrets/…`)
      t.ok(m && s.secrets?.includes(m[1]) && compose.secrets[m[1]]?.file, `${name}: secret ${m?.[1]} is declared and mounted`)
    }
  }
  for (const svc of ['gateway', 'auth', 'messages']) t.ok(compose.services[svc].command!.includes('--internal-token-file'), `${svc} gets the internal token file`)
  for (const svc of ['gateway', 'auth']) t.ok(compose.services[svc].command!.includes('--token-secret-file'), `${svc} gets the JWT secret file`)
})
