// yargs modules for the client: `register`, `send`, `read` (scripting, for bots
// and tests), `chat` (the terminal UI, or --web for the local web UI) and `profile
// export` / `profile import` (moving a profile to another computer). Whatever comes
// from the network is printed through terminal/format.ts (made safe) or as JSON.
import { promises as fs } from 'node:fs'
import type { CommandModule } from 'yargs'
import { MarshmelloError } from '../../errors.js'
import { checkMessageText } from '../../limits.js'
import { ROOM_RULE, toRoomName, toUsername, USERNAME_RULE } from '../../names.js'
import { networkOptions, openClient, readPassword, type ClientArgs } from './setup.js'
import { checkNewAccount, type ChatClient, type ChatMessage } from './chat-client.js'
import { formatMessage, jsonMessage } from './terminal/format.js'
import { exportProfile, exportUsername, importProfile } from './profile/transfer.js'

async function withLogin<T> (a: ClientArgs & { user: string, 'password-stdin'?: boolean }, fn: (c: ChatClient) => Promise<T>): Promise<T> {
  const client = await openClient(a)
  try {
    await client.login(a.user, await readPassword(a))
    return await fn(client)
  } finally {
    await client.flush()
    await client.circuits.close()
  }
}

const userOptions = (y: any) => networkOptions(y)
  .option('user', { type: 'string', demandOption: true, describe: 'your username' })
  .option('password-stdin', { type: 'boolean', default: false, describe: 'read the password from the first line of stdin (else MARSHMELLO_PASSWORD, else a prompt)' })

export const registerCommand: CommandModule<any, any> = {
  command: 'register',
  describe: 'create an account and its end-to-end keys (kept in your profile, encrypted with your password)',
  builder: (y) => userOptions(y),
  handler: async (a: any) => {
    const prompted = !process.env.MARSHMELLO_PASSWORD && !a['password-stdin']
    const password = await readPassword(a, 'choose a password: ')
    checkNewAccount(a.user, password) // the rules in plain words, before any network or file
    if (prompted && await readPassword(a, 'type it again: ') !== password) throw new MarshmelloError('MM_ERR_PASSWORD', 'the two passwords differ; nothing was created')
    const client = await openClient(a)
    try {
      await client.register(a.user, password)
      process.stdout.write(`registered ${a.user.toLowerCase()}\n`)
    } finally {
      await client.circuits.close()
    }
    process.exit(0)
  },
}

export const sendCommand: CommandModule<any, any> = {
  command: 'send <text..>',
  describe: 'send one message to a room or an end-to-end encrypted DM',
  builder: (y) => userOptions(y)
    .positional('text', { type: 'string', array: true, describe: 'the message' })
    .option('room', { type: 'string', describe: 'room to post in (lobby always exists)' })
    .option('to', { type: 'string', describe: 'user to send an end-to-end encrypted DM to' })
    .option('json', { type: 'boolean', default: false, describe: 'print the stored message as JSON' })
    .check((a) => {
      if (!!a.room === !!a.to) throw new Error('give exactly one of --room ROOM or --to USER')
      if (a.room && toRoomName(a.room) === null) throw new Error(`--room: ${ROOM_RULE}`)
      return true
    }),
  handler: async (a: any) => {
    const text = (a.text as string[]).join(' ')
    if (!text.trim()) throw new MarshmelloError('MM_ERR_EMPTY', 'nothing to send: give the message text')
    const check = checkMessageText(text)
    if (!check.ok) throw new MarshmelloError('MM_ERR_BAD_TEXT', check.explain)
    const m: ChatMessage = await withLogin(a, (c) => a.room ? c.sendRoom(a.room, text) : c.sendDm(a.to, text))
    process.stdout.write(a.json ? jsonMessage(m) + '\n' : `sent ${m.id}\n`)
    process.exit(0)
  },
}

export const readCommand: CommandModule<any, any> = {
  command: 'read',
  describe: 'print messages of a room or your DMs; --follow keeps printing new ones',
  builder: (y) => userOptions(y)
    .option('room', { type: 'string', describe: 'room to read' })
    .option('dms', { type: 'boolean', describe: 'read your direct messages (decrypted and verified)' })
    .option('follow', { type: 'boolean', default: false, describe: 'wait for new messages (long-poll) until interrupted' })
    .option('after', { type: 'string', describe: 'only messages after this id' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line: id, from, room or to, text, sentAt (and verified for DMs)' })
    .check((a) => {
      if (!!a.room === !!a.dms) throw new Error('give exactly one of --room ROOM or --dms')
      if (a.room && toRoomName(a.room) === null) throw new Error(`--room: ${ROOM_RULE}`)
      return true
    }),
  handler: async (a: any) => {
    await withLogin(a, async (c) => {
      let cursor: string | undefined = a.after
      const print = (m: ChatMessage) => process.stdout.write((a.json ? jsonMessage(m) : formatMessage(m, { style: 'log' })) + '\n')
      const page = (wait: number) => a.room ? c.readRoom(a.room, { after: cursor, limit: 200, wait }) : c.readDms({ after: cursor, limit: 200, wait })
      for (;;) {
        const p = await page(0)
        p.messages.forEach(print)
        cursor = p.cursor ?? cursor
        if (p.messages.length < 200) break
      }
      if (!a.follow) return
      let stop = false
      process.once('SIGINT', () => { stop = true; process.exit(0) })
      process.once('SIGTERM', () => { stop = true; process.exit(0) })
      while (!stop) {
        const p = await page(25)
        p.messages.forEach(print)
        cursor = p.cursor ?? cursor
      }
    })
    process.exit(0)
  },
}

export const chatCommand: CommandModule<any, any> = {
  command: 'chat',
  describe: 'chat in the terminal (or --web for a local web UI)',
  builder: (y) => networkOptions(y)
    .option('user', { type: 'string', describe: 'log in as this user (asked for when absent)' })
    .option('web', { type: 'boolean', default: false, describe: 'serve the web UI on 127.0.0.1 instead of the terminal UI' })
    .option('web-port', { type: 'number', default: 0, describe: 'port for --web (default: any free port)' })
    .option('room', { type: 'string', describe: 'room to start in (default: where you were last, else lobby)' }),
  handler: async (a: any) => {
    if (a.room !== undefined && toRoomName(a.room) === null) throw new Error(`--room: ${ROOM_RULE}`)
    if (a.web) {
      const { runWebUi } = await import('./web/server.js')
      await runWebUi(a)
      return
    }
    const { runTerminalChat } = await import('./tui.js')
    await runTerminalChat(a)
  },
}

const profileExport: CommandModule<any, any> = {
  command: 'export',
  describe: 'write your profile (keys, pinned contacts, rooms) to a file sealed with your password',
  builder: (y) => y
    .option('home', { type: 'string', describe: 'client home with profiles and settings (default ~/.marshmello)' })
    .option('user', { type: 'string', demandOption: true, describe: 'your username' })
    .option('out', { type: 'string', demandOption: true, describe: 'file to write (not overwritten if it exists)' })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'read the password from the first line of stdin (else MARSHMELLO_PASSWORD, else a prompt)' }),
  handler: async (a: any) => {
    const user = toUsername(a.user)
    if (user === null) throw new MarshmelloError('MM_ERR_BAD_USERNAME', USERNAME_RULE)
    const text = await exportProfile(a.home, user, await readPassword(a))
    try {
      await fs.writeFile(a.out, text, { flag: 'wx', mode: 0o600 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new MarshmelloError('MM_ERR_CONFIG', `${a.out} exists; give another --out`)
      throw err
    }
    process.stdout.write(`exported ${user}'s profile to ${a.out} (sealed with your password); on the other computer: marshmello profile import ${a.out}\n`)
    process.exit(0)
  },
}

const profileImport: CommandModule<any, any> = {
  command: 'import <file>',
  describe: 'add a profile exported on another computer (asks for its password)',
  builder: (y) => y
    .positional('file', { type: 'string', describe: 'the file profile export wrote' })
    .option('home', { type: 'string', describe: 'client home with profiles and settings (default ~/.marshmello)' })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'read the password from the first line of stdin (else MARSHMELLO_PASSWORD, else a prompt)' }),
  handler: async (a: any) => {
    const text = await fs.readFile(a.file, 'utf8')
    const user = exportUsername(text)
    await importProfile(a.home, text, await readPassword(a, `password of ${user}'s profile: `))
    process.stdout.write(`imported ${user}'s profile; log in with marshmello chat --user ${user}\n`)
    process.exit(0)
  },
}

export const profileCommand: CommandModule<any, any> = {
  command: 'profile <command>',
  describe: 'move a profile between computers: profile export, profile import',
  builder: (y) => y.command(profileExport).command(profileImport).demandCommand(1),
  handler: () => {},
}
