// `marshmello devnet --demo` (docs/ARCHITECTURE.md §11): two scripted users exchange a room message
// and a DM through circuits, then, for one message, each hop's view is printed from
// the relays' own traces: the hop before, the hop after, the cell sizes, and a
// search of every cell the relay received for the plaintext (never found): the
// onion made visible. Uses the client core in-process; relays run with --trace.
import { readFileSync, statSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { randomBase64url, randomHex } from '../../onion/crypto/random.js'
import type { Devnet } from './index.js'
import { openClient } from '../client/setup.js'
import type { ChatClient } from '../client/chat-client.js'

interface TraceLine { t: number, relay: string, dir: string, from: string, to: string, size: number, cell?: string }

async function user (devnetDir: string, name: string, password: string): Promise<ChatClient> {
  const c = await openClient({ devnet: devnetDir, home: join(devnetDir, 'demo', name), rotate: 600, verbose: false })
  try {
    await c.register(name, password)
  } catch (err) {
    if ((err as { code?: string }).code !== 'MM_ERR_USER_EXISTS') throw err
  }
  await c.login(name, password)
  return c
}

function traceOffsets (dir: string, n: number): number[] {
  return Array.from({ length: n }, (_, k) => {
    const f = join(dir, 'trace', `relay${k + 1}.jsonl`)
    return existsSync(f) ? statSync(f).size : 0
  })
}

function readTrace (dir: string, i: number, from: number): TraceLine[] {
  const f = join(dir, 'trace', `relay${i + 1}.jsonl`)
  if (!existsSync(f)) return []
  return readFileSync(f).subarray(from).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TraceLine)
}

export async function runDemo (devnet: Devnet, write: (line: string) => void): Promise<void> {
  const { info } = devnet
  const dir = info.dir
  // the demo users' password only guards their throwaway demo profiles
  const password = `demo-${randomBase64url(9)}`
  write('demo: signing up alice and bob (profiles in ' + join(dir, 'demo') + ')')
  const alice = await user(dir, 'alice', password)
  const bob = await user(dir, 'bob', password)
  try {
    await bob.readRoom('lobby', { limit: 1 }) // bob's circuit exists before alice speaks
    const text = `hello from alice ${randomHex(4)}`
    await alice.circuits.current()
    const path = alice.circuits.describe()
    const before = traceOffsets(dir, info.relays.length)
    const sent = await alice.sendRoom('lobby', text)
    await new Promise((r) => setTimeout(r, 300)) // traces are appended asynchronously
    write(`demo: alice → #lobby: "${text}" (stored as ${sent.id})`)
    const got = await bob.readRoom('lobby', { limit: 200 })
    const seen = got.messages.some((m) => m.id === sent.id && m.text === text)
    write(`demo: bob read it through his own circuit: ${seen ? 'yes' : 'NO'}`)

    write('demo: what each hop saw of alice\'s message:')
    const needle = Buffer.from(text)
    const name = (h: { nickname: string, role: string }) => h.role === 'server' ? 'the server' : h.nickname
    path.forEach((hop, k) => {
      const prev = k === 0 ? 'alice (a client: the entry relay cannot tell who)' : name(path[k - 1])
      const next = k === path.length - 1 ? '-' : name(path[k + 1])
      if (hop.role === 'server') {
        write(`  ${k + 1}. the server  from ${prev}  → it peels the last layer and reads the API request, but only ever sees ${name(path[k - 1])}'s address`)
        return
      }
      const idx = info.relays.findIndex((r) => r.fingerprint === hop.fingerprint)
      const lines = idx >= 0 ? readTrace(dir, idx, before[idx]) : []
      const sizes = [...new Set(lines.map((l) => l.size))]
      const cells = lines.filter((l) => l.cell).map((l) => Buffer.from(l.cell!, 'base64'))
      const leaked = cells.some((c) => c.includes(needle))
      const froms = [...new Set(lines.filter((l) => l.dir === 'forward').map((l) => l.from))]
      const tos = [...new Set(lines.filter((l) => l.dir === 'forward').map((l) => l.to))]
      write(`  ${k + 1}. ${hop.nickname} (${hop.fingerprint.slice(0, 8)})  before: ${prev} [${froms.join(', ') || '-'}]  after: ${next} [${tos.join(', ') || '-'}]`)
      write(`     ${lines.length} cells, size ${sizes.join('/') || '-'} bytes; plaintext in the ${cells.length} cells it received: ${cells.length === 0 ? 'not captured' : leaked ? 'FOUND (!)' : 'not found — it could not read the content'}`)
    })

    const dmText = `a secret for alice ${randomHex(4)}`
    await bob.sendDm('alice', dmText)
    const dms = await alice.readDms({ limit: 200 })
    const dm = dms.messages.find((m) => m.text === dmText)
    write(`demo: bob → alice DM, end-to-end encrypted: alice ${dm?.verified ? 'decrypted it on their PQXDH + Double Ratchet session' : 'could NOT decrypt it'}`)
    const store = join(info.server.dataDir, 'messages.db')
    const stored = existsSync(store) ? readFileSync(store) : Buffer.alloc(0)
    write(`demo: the server's message store holds the DM as ciphertext only: plaintext ${stored.includes(Buffer.from(dmText)) ? 'FOUND (!)' : 'not found'}`)
    write('demo: done — the network keeps running; Ctrl-C to stop')
  } finally {
    await alice.circuits.close()
    await bob.circuits.close()
  }
}
