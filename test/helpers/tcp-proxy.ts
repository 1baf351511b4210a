// A TCP proxy (node:net) between a process under test and a shared backend
// (PostgreSQL, Redis), so a test can take the backend "down" for that process alone:
// cut() destroys every proxied connection and refuses new ones (the port stays
// bound), restore() lets connections through again. The backend itself never stops.
import { connect, createServer, type Socket } from 'node:net'

export interface TcpProxy {
  port: number
  /** `scheme://host:port…` of `url` with host and port replaced by the proxy's */
  via (url: string): string
  cut (): void
  restore (): void
  close (): Promise<void>
}

export async function tcpProxy (target: { host: string, port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let up = true
  const server = createServer(client => {
    client.on('error', () => {})
    if (!up) { client.destroy(); return }
    const upstream = connect({ host: target.host, port: target.port })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    via: (url) => url.replace(/^([a-z+]+:\/\/(?:[^@/]*@)?)[^/:?]+(?::\d+)?/, `$1127.0.0.1:${port}`),
    cut: () => { up = false; for (const s of sockets) s.destroy() },
    restore: () => { up = true },
    close: async () => {
      up = false
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    },
  }
}
