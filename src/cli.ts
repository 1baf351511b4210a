// The `marshmello` command line: parses arguments and hands them to a role.
// Each role keeps its yargs module in src/roles/<role>/command.ts; this file only
// assembles them, adds --config and MARSHMELLO_* environment variables, and turns
// errors into one line and an exit code.
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { readFileSync } from 'node:fs'
import { VERSION } from './version.js'
import { isMarshmelloError } from './errors.js'

function loadConfig (path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new Error(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err })
  }
}

export async function main (argv: string[]): Promise<void> {
  const commands = await import('./commands.js')
  await yargs(argv)
    .scriptName('marshmello')
    .version(`${VERSION} (Node ${process.versions.node})`)
    .env('MARSHMELLO')
    .config('config', 'JSON file with any flag as a key (e.g. {"port": 9001})', loadConfig)
    // MARSHMELLO_* variables that are not flags: secrets read from the environment only
    // (never from argv) and test/runtime settings. Declared hidden so strict mode accepts them.
    .option('password', { hidden: true, type: 'string' })
    .option('internal-token', { hidden: true, type: 'string' })
    .option('parent-watch', { hidden: true })
    .option('log-level', { hidden: true, type: 'string' })
    .option('test-mongo-url', { hidden: true, type: 'string' })
    .check(() => {
      const secret = argv.find((x) => /^--(password|internal-token)(=|$)/.test(x))
      if (secret) throw new Error(`${secret.split('=')[0]} is not accepted on the command line (it would show in ps); use MARSHMELLO_PASSWORD / --password-stdin or --internal-token-file`)
      return true
    })
    .command(commands.all)
    .demandCommand(1, 'name a command: marshmello --help lists them')
    .strict()
    .recommendCommands()
    .fail((msg, err) => {
      if (err) throw err
      process.stderr.write(`marshmello: ${msg}\n(run the command with --help to see its options)\n`)
      process.exit(2)
    })
    .help()
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .parseAsync()
}

main(hideBin(process.argv)).catch((err) => {
  const msg = isMarshmelloError(err) ? `${err.message} (${err.code})` : (err as Error).message
  process.stderr.write(`marshmello: ${msg}\n`)
  process.exit(1)
})
