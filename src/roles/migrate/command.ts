// yargs module for `marshmello migrate`: opens the stores named by URL, copies
// (index.ts), prints counts, and exits non-zero when verification fails. URLs are
// printed without their passwords.
import type { CommandModule } from 'yargs'
import { openMessageStore, openUserStore, redactUrl } from '../../storage/index.js'
import type { MessageStore, UserStore } from '../../storage/types.js'
import { migrate, type MigrateCounts } from './index.js'

const line = (what: string, c: MigrateCounts) =>
  `${what}: ${c.read} read, ${c.copied} copied, ${c.present} already present, ${c.conflicts} conflicts (kept the target's)`

export const migrateCommand: CommandModule<any, any> = {
  command: 'migrate',
  describe: 'copy users and messages between stores (e.g. sqlite/nedb to PostgreSQL/MongoDB); safe to run twice',
  builder: (y) => y
    .option('from-users', { type: 'string', describe: 'source user store: sqlite:PATH | postgres://…[?schema=NAME]' })
    .option('to-users', { type: 'string', describe: 'target user store: sqlite:PATH | postgres://…[?schema=NAME]' })
    .option('from-messages', { type: 'string', describe: 'source message store: nedb:PATH | mongodb://… | postgres://…[?schema=NAME]' })
    .option('to-messages', { type: 'string', describe: 'target message store: nedb:PATH | mongodb://… | postgres://…[?schema=NAME]' })
    .check((a) => {
      if (!!a['from-users'] !== !!a['to-users']) throw new Error('give both --from-users and --to-users, or neither')
      if (!!a['from-messages'] !== !!a['to-messages']) throw new Error('give both --from-messages and --to-messages, or neither')
      if (!a['from-users'] && !a['from-messages']) throw new Error('nothing to do: give --from-users/--to-users and/or --from-messages/--to-messages')
      if (a['from-users'] && a['from-users'] === a['to-users']) throw new Error('--from-users and --to-users are the same store')
      if (a['from-messages'] && a['from-messages'] === a['to-messages']) throw new Error('--from-messages and --to-messages are the same store')
      return true
    }),
  handler: async (a) => {
    const opened: Array<UserStore | MessageStore> = []
    const open = async <S extends UserStore | MessageStore>(p: Promise<S>): Promise<S> => { const s = await p; opened.push(s); return s }
    try {
      const stores = {
        fromUsers: a['from-users'] ? await open(openUserStore(a['from-users'])) : undefined,
        toUsers: a['to-users'] ? await open(openUserStore(a['to-users'])) : undefined,
        fromMessages: a['from-messages'] ? await open(openMessageStore(a['from-messages'])) : undefined,
        toMessages: a['to-messages'] ? await open(openMessageStore(a['to-messages'])) : undefined,
      }
      if (a['from-users']) process.stdout.write(`users: ${redactUrl(a['from-users'])} -> ${redactUrl(a['to-users'])}\n`)
      if (a['from-messages']) process.stdout.write(`messages: ${redactUrl(a['from-messages'])} -> ${redactUrl(a['to-messages'])}\n`)
      const result = await migrate(stores, (what, c) => process.stderr.write(`${what}: ${c.read} so far\n`))
      if (result.users) process.stdout.write(line('users', result.users) + '\n')
      if (result.messages) process.stdout.write(line('messages', result.messages) + '\n')
      if (stores.toUsers) process.stdout.write(`target now holds ${await stores.toUsers.count()} users\n`)
      if (stores.toMessages) process.stdout.write(`target now holds ${await stores.toMessages.count()} messages\n`)
      process.stdout.write('verified: every source record is in the target\n')
    } finally {
      await Promise.allSettled(opened.map(async s => await s.close()))
    }
  },
}
