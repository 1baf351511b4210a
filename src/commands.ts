// Every subcommand, one yargs module per role (src/roles/<role>/command.ts).
import type { CommandModule } from 'yargs'

export const all: CommandModule<any, any>[] = []
