// Process lifecycle for long-running roles: stop cleanly on SIGINT/SIGTERM (exit 0),
// and never die on a stray error in a request: log it (without details that could
// carry secrets) and keep serving. With MARSHMELLO_PARENT_WATCH=1, also stop when
// stdin (a pipe from the parent) ends.
import { createLogger } from '../../log.js'

let installed = false

export function onShutdown (stop: () => Promise<void>): void {
  const log = createLogger({ name: 'process' })
  let stopping = false
  const handler = (sig: string) => {
    if (stopping) return
    stopping = true
    const t = setTimeout(() => process.exit(0), 5000)
    t.unref()
    stop().catch((err) => log.error('error while stopping', { reason: (err as Error).message })).finally(() => {
      log.debug('stopped', { signal: sig })
      process.exit(0)
    })
  }
  process.once('SIGINT', () => handler('SIGINT'))
  process.once('SIGTERM', () => handler('SIGTERM'))
  // a devnet child (src/roles/devnet) gets stdin as a pipe from its parent: EOF means
  // the parent is gone, even after a SIGKILL, so no child outlives it
  if (process.env.MARSHMELLO_PARENT_WATCH === '1') {
    process.stdin.on('end', () => handler('parent-gone')).on('error', () => handler('parent-gone')).resume()
  }
  if (!installed) {
    installed = true
    process.on('uncaughtException', (err) => log.error('uncaught exception (kept running)', { code: (err as any).code, reason: err.message }))
    process.on('unhandledRejection', (err) => log.error('unhandled rejection (kept running)', { reason: (err as Error)?.message }))
  }
}
