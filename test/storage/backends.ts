// Where the external test backends live and how to tell whether they are up. Each
// test file opens its own namespace (schema, key prefix, collection) per run and
// drops it at the end, so parallel runs and other users of the servers are untouched.

import { connect } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const PG_URL = process.env.MARSHMELLO_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.MARSHMELLO_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const MONGO_URL = process.env.MARSHMELLO_TEST_MONGO_URL

/** true when a TCP connection to the URL's host and port opens within 1 s */
export function reachable (url: string, defaultPort = 0): Promise<boolean> {
  const u = new URL(url)
  const port = Number(u.port || defaultPort || { 'postgres:': 5432, 'postgresql:': 5432, 'redis:': 6379 }[u.protocol] || 0)
  return new Promise(resolve => {
    const sock = connect({ host: u.hostname, port, timeout: 1_000 })
    const done = (ok: boolean) => { sock.destroy(); resolve(ok) }
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
    sock.once('timeout', () => done(false))
  })
}

/** a fresh temporary directory, removed when `t` ends */
export function tempDir (t: { teardown (fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mm-storage-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** deletes every Redis key starting with `prefix` */
export async function redisCleanup (url: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await r.connect()
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await r.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    r.disconnect()
  }
}

/** drops the PostgreSQL schemas created by a test run */
export async function pgDropSchemas (url: string, schemas: string[]): Promise<void> {
  if (schemas.length === 0) return
  const { default: pg } = await import('pg')
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  } finally {
    await c.end()
  }
}

/** A TCP proxy to a backend that a test can cut, to see a store go down mid-use. */
export interface CuttableProxy { port: number, cut (): Promise<void> }

export async function cuttableProxy (target: string): Promise<CuttableProxy> {
  const { createServer } = await import('node:net')
  const u = new URL(target)
  const sockets = new Set<import('node:net').Socket>()
  const server = createServer(client => {
    const upstream = connect({ host: u.hostname, port: Number(u.port) })
    for (const s of [client, upstream]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)) }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    cut: async () => {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    }
  }
}
