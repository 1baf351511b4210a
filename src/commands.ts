// Every subcommand, one yargs module per role (src/roles/<role>/command.ts).
import type { CommandModule } from 'yargs'
import { relayCommand } from './roles/relay/command.js'
import { serverCommand } from './roles/server/command.js'
import { devnetCommand } from './roles/devnet/command.js'
import { chatCommand, readCommand, registerCommand, sendCommand } from './roles/client/command.js'

export const all: CommandModule<any, any>[] = [serverCommand, relayCommand, chatCommand, registerCommand, sendCommand, readCommand, devnetCommand]
import { migrateCommand } from './roles/migrate/command.js'; all.push(migrateCommand) // one line per later role keeps merges trivial
import { profileCommand } from './roles/client/command.js'; all.push(profileCommand)
