// `marshmello chat --web`: serves the web UI on 127.0.0.1 (plain HTTP, loopback
// only), prints its URL once with the per-run token in the fragment (never sent to
// a server, never in a Referer), and runs until SIGINT/SIGTERM, then logs out and
// closes the circuits. The page, the browser bundle (built from ui/*.ts by
// scripts/web-bundle.mjs) and the stylesheet are bundled in as text.
import { MarshmelloError } from '../../../errors.js'
import { openClient, resolveNetwork, type ClientArgs } from '../setup.js'
import { buildWebApp } from './app.js'
import { newToken } from './security.js'
import { WebSession } from './session.js'
import html from './page.html'
import css from './app.css'
import js from 'marshmello:web-bundle'

export interface WebUiArgs extends ClientArgs { 'web-port'?: number, room?: string }

export async function runWebUi (a: WebUiArgs): Promise<void> {
  const port = a['web-port'] ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MarshmelloError('MM_ERR_CONFIG', '--web-port must be a port number (0: any free port)')
  const token = newToken()
  const session = new WebSession(a, { openClient, resolveNetwork })
  await session.start()
  let bound = 0
  const app = await buildWebApp({ token, port: () => bound }, session, { html, css, js })
  await app.listen({ host: '127.0.0.1', port })
  bound = (app.server.address() as { port: number }).port
  process.stdout.write(`web UI on http://127.0.0.1:${bound}/#token=${token}\n`)
  if (session.networkError) process.stderr.write(`network: ${session.networkError} (set it in the page's network settings)\n`)

  await new Promise<void>((resolve) => {
    let stopping = false
    const stop = () => {
      if (stopping) return
      stopping = true
      // a long-poll still open must not hold the exit past a few seconds
      const hard = setTimeout(() => process.exit(0), 5000)
      hard.unref()
      void (async () => {
        await session.close().catch(() => {})
        await app.close().catch(() => {})
        resolve()
      })()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  process.exit(0)
}
