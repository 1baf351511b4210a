// `marshmello chat`: the terminal UI. Logs in or signs up at the prompts
// (terminal/sign-in.ts), then runs the chat (terminal/chat-session.ts): incoming
// messages are printed above the prompt, which is also the status line, without
// disturbing the line being typed; every line printed is made safe first
// (terminal/safe-text.ts); slash commands are terminal/commands.ts's.
import { systemClock } from '../common/clock.js'
import { toRoomName } from '../../names.js'
import { openClient, promptHidden, readPassword, type ClientArgs } from './setup.js'
import { ChatSession } from './terminal/chat-session.js'
import { runCommand } from './terminal/commands.js'
import { Screen } from './terminal/screen.js'
import { signIn } from './terminal/sign-in.js'

export async function runTerminalChat (a: ClientArgs & { user?: string, room?: string, 'password-stdin'?: boolean }): Promise<void> {
  const client = await openClient(a)
  const screen = new Screen(process.stdin, process.stdout)
  let given: Promise<string | null> | null = null
  try {
    screen.say('connecting through the onion network…')
    await signIn(client, {
      say: (...l) => screen.say(...l),
      ask: (q) => screen.ask(q),
      hidden: (q) => promptHidden(q),
      // a password from the environment or stdin is read once; with a terminal, it is asked for
      givenPassword: () => (given ??= process.env.MARSHMELLO_PASSWORD || a['password-stdin'] || !process.stdin.isTTY ? readPassword(a) : Promise.resolve(null)),
    }, a.home, a.user)
  } catch (err) {
    await client.circuits.close()
    throw err
  }

  const start = a.room === undefined ? undefined : { room: toRoomName(a.room)! }
  const session = new ChatSession(client, screen, a.home, systemClock, start)
  const path = () => client.circuits.describe().map((h) => h.nickname || h.role).join(' → ')
  screen.say(`logged in as ${client.username}; circuit: ${path() || 'building…'}  (/help for commands)`)

  const quit = async () => {
    if (session.quitting) return
    session.quitting = true
    // what is not sent yet stays in the profile (sealed) and goes out at the next start
    await session.kept.close()
    const unsent = session.outbox.pending().length
    if (unsent) screen.say(`${unsent} message${unsent === 1 ? ' is' : 's are'} not sent yet: kept in your profile, sent when you next start the chat`)
    screen.close()
    await session.flush().catch(() => {})
    await client.logout().catch(() => {})
    await client.circuits.close()
    process.stdout.write('bye\n')
    process.exit(0)
  }

  await session.start() // the profile's chat state first: what is typed needs it
  screen.start((line) => {
    const text = line.trim()
    if (!text) { screen.prompt(); return }
    if (!text.startsWith('/')) { session.send(text); screen.prompt(); return }
    runCommand(session, text)
      .then((r) => r === 'quit' ? quit() : undefined)
      .catch((err) => session.error(err))
      .finally(() => screen.prompt())
  }, () => { void quit() })
  await new Promise(() => {})
}
