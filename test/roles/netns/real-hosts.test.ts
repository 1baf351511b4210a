// A network of real hosts (issue 15 item 9): the server (the directory authority and
// final hop), six relays and a client each in a network namespace of its own, with
// addresses in distinct /16s (hosts.ts), joined by veth pairs to a bridge in a namespace
// the test creates; every namespace (and so every link) is removed at the end, also on
// failure. The devnet's own code starts the roles (devnet-main.ts, in an operator
// namespace); the real client runs in its own (client-main.ts). Shown:
// - P1: no connection from the client's address reaches the server: the server's
//   accepted cell-channel peers are relays only, and the kernel of the server's host
//   never even resolved the client's address (its neighbour table), nor the client's the
//   server's; no output or file of the server names the client's address;
// - the path rules on real addresses: every path has its three relays in three /16s,
//   always through the same guard, and the relay in the guard's /16 is never chosen with it;
// - the directory lists at most two relays on one address (a third on B's is refused);
//   marked TODO until the directory enforces it.
// Skipped, with the reason printed, where `ip netns` is missing or not permitted.
import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, procOf, tmp, type Proc } from '../../helpers/net.js'
import { ALL_HOSTS, CLIENT, EXTRA_RELAY, OPS, RELAY_HOSTS, SERVER, hostIp, slash16 } from './hosts.js'

const PATHS = 6

/** why namespaces cannot be used here, or null */
function unavailable (): string | null {
  const which = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' })
  if (which.status !== 0) return '`ip` (iproute2) is not installed'
  const probe = `mmprobe${process.pid}`
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' })
  if (add.status !== 0) return `\`ip netns add\` is not permitted here: ${add.stderr.trim()}`
  spawnSync('ip', ['netns', 'del', probe])
  return null
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

/** namespaces a killed earlier run left (named mmt<pid>-…, that pid gone) */
function removeStale (): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const m = /^(mmt(\d+)-\S+)/.exec(line)
    if (m && !alive(Number(m[2]))) removeNamespace(m[1])
  }
}

/** kills whatever still runs in it, then deletes it (its links go with it) */
function removeNamespace (ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  spawnSync('ip', ['netns', 'del', ns])
}

const reason = unavailable()
if (reason) {
  t.comment(`SKIPPED: network of real hosts (${reason})`)
  t.test('a network of real hosts in network namespaces', { skip: reason }, async () => {})
} else {
  t.test('server, relays and a client on hosts of their own', async (t) => {
    removeStale()
    const prefix = `mmt${process.pid}`
    const nsName = (h: string) => `${prefix}-${h}`
    const bridge = nsName('br')
    const made: string[] = []
    const procs: Proc[] = []
    // registered before anything exists, so a failure at any step removes what was made
    t.teardown(async () => {
      for (const p of procs) { try { p.child.stdin?.end() } catch { /* gone */ } }
      await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((resolve) => setTimeout(resolve, 8000))])
      for (const ns of made.reverse()) removeNamespace(ns)
      const left = ip('netns', 'list').split('\n').filter((l) => l.startsWith(`${prefix}-`))
      if (left.length) t.fail(`namespaces left behind: ${left.join(', ')}`)
    })

    /* the network: a bridge in its own namespace, one veth from each host to it */
    ip('netns', 'add', bridge)
    made.push(bridge)
    ip('-n', bridge, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', bridge, 'link', 'set', 'br0', 'up')
    for (const h of ALL_HOSTS) {
      const ns = nsName(h.name)
      ip('netns', 'add', ns)
      made.push(ns)
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `v-${h.name}`, 'netns', bridge)
      ip('-n', bridge, 'link', 'set', `v-${h.name}`, 'master', 'br0', 'up')
      ip('-n', ns, 'addr', 'add', `${h.ip}/32`, 'dev', 'eth0')
      ip('-n', ns, 'link', 'set', 'eth0', 'up')
      // a route to each other host, on the link: nothing else is reachable from here
      for (const o of ALL_HOSTS) if (o.ip !== h.ip) ip('-n', ns, 'route', 'add', `${o.ip}/32`, 'dev', 'eth0')
    }

    /* the devnet, from the operator's host */
    const dir = tmp('mm-netns-')
    const events = (p: Proc) => p.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>)
    const ops = procOf(spawn('ip', ['netns', 'exec', nsName(OPS.name), process.execPath, '--import', 'tsx', join('test', 'roles', 'netns', 'devnet-main.ts'), prefix, dir],
      { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['pipe', 'pipe', 'pipe'] }))
    procs.push(ops)
    const first = await ops.waitFor(/"event":"(ready|error)"/, 60_000)
    if (first[1] === 'error') throw new Error(`the devnet did not start: ${JSON.stringify(events(ops).find((e) => e.event === 'error'))}`)
    const { info, peers } = events(ops).find((e) => e.event === 'ready')!
    t.equal(info.server.host, SERVER.ip, 'the server listens on its own host')
    t.same(info.relays.map((r: any) => r.host), ['a1', 'a2', 'b', 'b', 'c1', 'c2'].map(hostIp), 'and each relay on its own')
    await ops.waitFor(/"event":"extra"/, 30_000)
    const extra = events(ops).find((e) => e.event === 'extra')!

    /* the client, from its own host */
    const home = tmp('mm-netns-home-')
    const client = procOf(spawn('ip', ['netns', 'exec', nsName(CLIENT.name), process.execPath, '--import', 'tsx', join('test', 'roles', 'netns', 'client-main.ts'), dir, home, String(PATHS)],
      { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['pipe', 'pipe', 'pipe'] }))
    procs.push(client)
    t.equal(await client.exited, 0, `the client ran: ${client.stderr()}`)
    const said = events(client)
    t.same(said.find((e) => e.event === 'read')?.texts, ['hello from another host'], 'it registered, sent and read back through the onion')

    t.test('P1: nothing from the client\'s address reaches the server', async (t) => {
      const seen = readFileSync(peers, 'utf8').split('\n').filter(Boolean).map((p) => p.replace(/:\d+$/, ''))
      const relayIps = new Set(RELAY_HOSTS.map((h) => h.ip))
      t.ok(seen.length > 0, 'the server accepted cell channels')
      t.same(seen.filter((p) => !relayIps.has(p)), [], `every peer the server accepted is a relay (${[...new Set(seen)].join(', ')})`)
      t.notOk(seen.includes(CLIENT.ip), 'never the client')
      const neigh = (ns: string) => ip('-n', nsName(ns), 'neigh', 'show')
      t.notMatch(neigh(SERVER.name), CLIENT.ip, 'the server\'s host never resolved the client\'s address: no packet between them')
      t.ok(RELAY_HOSTS.some((h) => neigh(SERVER.name).includes(h.ip)), 'while it did resolve relays\' (the check sees real traffic)')
      t.notMatch(neigh(CLIENT.name), SERVER.ip, 'nor the client\'s host the server\'s')
      // the server's own output and files
      ops.child.stdin!.end()
      await ops.waitFor(/"event":"stopped"/, 20_000)
      const lines: Record<string, string[]> = events(ops).find((e) => e.event === 'stopped')!.lines
      t.notMatch((lines.server ?? []).join('\n'), CLIENT.ip, 'no line the server printed names the client\'s address')
      const files = (d: string): string[] => readdirSync(d).flatMap((f) => statSync(join(d, f)).isDirectory() ? files(join(d, f)) : [join(d, f)])
      const holding = files(info.server.dataDir).filter((f) => readFileSync(f).includes(Buffer.from(CLIENT.ip)))
      t.same(holding, [], 'no file the server wrote holds it')
    })

    t.test('paths on real addresses: three /16s, one guard, never its /16 sibling', async (t) => {
      const paths = said.filter((e) => e.event === 'path').map((e) => e.hops as { host: string, fingerprint: string, role: string }[])
      t.equal(paths.length, PATHS, `${PATHS} fresh circuits`)
      for (const p of paths) {
        t.same(p.map((h) => h.role), ['relay', 'relay', 'relay', 'server'], 'three relays, then the server')
        t.equal(new Set(p.slice(0, 3).map((h) => slash16(h.host))).size, 3, `each relay in its own /16: ${p.slice(0, 3).map((h) => h.host).join(' ')}`)
      }
      const guards = new Set(paths.map((p) => p[0].fingerprint))
      t.equal(guards.size, 1, 'every circuit enters through the one guard')
      const guard = paths[0][0]
      const siblings = info.relays.filter((r: any) => r.fingerprint !== guard.fingerprint && slash16(r.host) === slash16(guard.host))
      t.ok(siblings.length > 0, `another relay is listed in the guard's /16 (${slash16(guard.host)}/16)`)
      for (const s of siblings) t.notOk(paths.some((p) => p.some((h) => h.fingerprint === s.fingerprint)), `${s.nickname} (${s.host}) is never on a path with the guard (${guard.host})`)
    })

    // the directory's per-IP limit (issue 15 item 1, Tor's AuthDirMaxServersPerAddr) on real addresses
    t.test('at most two relays on one address', async (t) => {
      const onB = extra.listed.filter((r: any) => r.host === hostIp(EXTRA_RELAY))
      t.equal(onB.length, 2, `two relays listed on ${hostIp(EXTRA_RELAY)}`)
      t.notOk(extra.listed.some((r: any) => r.fingerprint === extra.fingerprint), 'the third one on that address is not listed')
      t.match(extra.lines.join('\n'), /directory refused our descriptor/, 'it was told so')
    })
  })
}
