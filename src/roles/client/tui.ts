// `marshmello chat`: the terminal UI. Log in or sign up (password without echo),
// then chat in rooms and DMs; incoming messages (long-poll through the onion)
// are printed above the prompt without disturbing the line being typed.
import readline from 'node:readline'
import { MarshmelloError, isMarshmelloError } from '../../errors.js'
import { ROOM_RULE, toRoomName } from '../../names.js'
import { openClient, promptHidden, readPassword, type ClientArgs } from './setup.js'
import { KeyChangedError, type ChatMessage } from './chat-client.js'
import { formatMessage } from './command.js'
import { profileExists } from './profile/identity.js'

const HELP = [
  'commands:',
  '  /join ROOM     switch to a room (created by its first message)',
  '  /dm USER       talk to USER, end-to-end encrypted',
  '  /whois USER    show USER\'s key fingerprint',
  '  /trust USER    accept USER\'s changed key after checking it with them',
  '  /circuit       show the current circuit (relays and fingerprints)',
  '  /newcircuit    build a fresh circuit',
  '  /help          this list',
  '  /quit          leave',
].join('\n')

export async function runTerminalChat (a: ClientArgs & { user?: string, room: string, 'password-stdin'?: boolean }): Promise<void> {
  const client = await openClient(a)
  const out = process.stdout
  let rl: readline.Interface | null = null
  const ask = (q: string) => new Promise<string>((resolve) => {
    const r = readline.createInterface({ input: process.stdin, output: out, terminal: true })
    r.question(q, (ans) => { r.close(); resolve(ans.trim()) })
  })
  const say = (line: string) => {
    if (!rl) { out.write(line + '\n'); return }
    readline.clearLine(out, 0)
    readline.cursorTo(out, 0)
    out.write(line + '\n')
    rl.prompt(true)
  }

  try {
    out.write('connecting through the onion network…\n')
    const user = (a.user ?? await ask('username: ')).toLowerCase()
    if (await profileExists(a.home, user)) {
      await client.login(user, process.stdin.isTTY ? await promptHidden('password: ') : await readPassword(a))
    } else {
      const yes = await ask(`no profile for ${user} here. Sign up as ${user}? [y/N] `)
      if (!/^y/i.test(yes)) throw new MarshmelloError('MM_ERR_CANCELLED', 'not signed up; run again to log in with an existing profile (--home DIR)')
      const pw = process.stdin.isTTY ? await promptHidden('choose a password (8+ characters): ') : await readPassword(a)
      await client.register(user, pw)
      await client.login(user, pw)
      out.write(`signed up as ${user}\n`)
    }
  } catch (err) {
    await client.circuits.close()
    throw err
  }

  let room: string | null = a.room.toLowerCase()
  let dm: string | null = null
  let roomGen = 0
  let quitting = false
  const path = () => client.circuits.describe().map((h) => h.nickname || h.role).join(' → ')

  const errLine = (err: unknown) => say(`! ${isMarshmelloError(err) ? err.message : (err as Error).message}`)

  const followRoom = async (name: string, gen: number) => {
    let cursor: string | undefined
    try {
      // the last messages of the room, in one request however long its history
      const recent = await client.readRoom(name, { latest: true, limit: 20 })
      recent.messages.forEach((m) => say(formatMessage(m)))
      cursor = recent.cursor
    } catch (err) { errLine(err) }
    while (!quitting && gen === roomGen) {
      try {
        const p = await client.readRoom(name, { after: cursor, wait: 25 })
        if (gen !== roomGen) return
        p.messages.forEach((m) => say(formatMessage(m)))
        cursor = p.cursor ?? cursor
      } catch (err) {
        if (quitting) return
        errLine(err)
        await new Promise((r) => setTimeout(r, 2000))
      }
    }
  }

  const followDms = async () => {
    let cursor: string | undefined
    try {
      // only DMs from now on are shown: the newest one is the cursor
      cursor = (await client.readDms({ latest: true, limit: 1 })).cursor
    } catch (err) { errLine(err) }
    while (!quitting) {
      try {
        const p = await client.readDms({ after: cursor, wait: 25 })
        p.messages.forEach((m: ChatMessage) => say(formatMessage(m)))
        cursor = p.cursor ?? cursor
      } catch (err) {
        if (quitting) return
        errLine(err)
        await new Promise((r) => setTimeout(r, 2000))
      }
    }
  }

  rl = readline.createInterface({ input: process.stdin, output: out, terminal: true, historySize: 100 })
  const setPrompt = () => rl!.setPrompt(dm ? `[@${dm}] > ` : `[#${room}] > `)
  setPrompt()
  say(`logged in as ${client.username}; circuit: ${path() || 'building…'}  (/help for commands)`)
  void followRoom(room, roomGen)
  void followDms()

  const handle = async (line: string) => {
    const text = line.trim()
    if (!text) return
    if (text.startsWith('/')) {
      const [cmd, arg] = text.split(/\s+/, 2)
      switch (cmd) {
        case '/help': return say(HELP)
        case '/quit': return quit()
        case '/join': {
          const next = arg ? toRoomName(arg) : null
          if (next === null) return say(`usage: /join ROOM (${ROOM_RULE})`)
          room = next; dm = null; roomGen++
          setPrompt(); say(`joined #${room}`)
          void followRoom(room, roomGen)
          return
        }
        case '/dm': {
          if (!arg) return say('usage: /dm USER')
          const w = await client.whois(arg)
          if (w.status === 'changed') return say(`⚠ WARNING: ${w.username}'s key CHANGED (now ${w.fingerprint}). Verify it with them, then /trust ${w.username}.`)
          dm = w.username; setPrompt()
          return say(`DMs with ${dm} are end-to-end encrypted; their key fingerprint: ${w.fingerprint}${w.status === 'new' ? ' (first seen, now pinned)' : ''}`)
        }
        case '/whois': {
          if (!arg) return say('usage: /whois USER')
          const w = await client.whois(arg)
          return say(`${w.username}: ${w.fingerprint}${w.status === 'changed' ? '  ⚠ CHANGED since first seen: verify, then /trust' : w.status === 'new' ? '  (first seen, now pinned)' : '  (matches the pinned key)'}`)
        }
        case '/trust': {
          if (!arg) return say('usage: /trust USER')
          return say(`now trusting ${arg.toLowerCase()}'s key ${await client.trust(arg)}`)
        }
        case '/circuit': {
          await client.circuits.current()
          const hops = client.circuits.describe()
          return say(['you', ...hops.map((h, i) => `${i === hops.length - 1 ? 'server' : `relay ${i + 1}`} ${h.nickname} ${h.fingerprint.slice(0, 16)}… at ${h.host}:${h.port}`)].join('\n  → '))
        }
        case '/newcircuit':
          await client.circuits.newCircuit()
          return say(`new circuit: ${path()}`)
        default:
          return say(`unknown command ${cmd}; /help lists them`)
      }
    }
    // no local echo: the DM poll (like the room poll) shows our own message once it is stored
    if (dm) await client.sendDm(dm, text)
    else await client.sendRoom(room!, text)
  }

  const quit = async () => {
    if (quitting) return
    quitting = true
    rl?.close()
    await client.logout().catch(() => {})
    await client.circuits.close()
    out.write('bye\n')
    process.exit(0)
  }

  rl.on('line', (line) => {
    handle(line).catch((err) => {
      if (err instanceof KeyChangedError) say(`⚠ ${err.message}`)
      else errLine(err)
    }).finally(() => rl?.prompt(true))
  })
  rl.on('close', () => { void quit() })
  rl.prompt()
  await new Promise(() => {})
}
