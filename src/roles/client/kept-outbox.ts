// The outbox of a signed-in client, as both the terminal chat and the web UI run it:
// the one queue (outbox.ts) sending through the ChatClient, paused while the client is
// offline and resumed when it is back (connectivity.ts), and kept in the profile
// (profile/outbox-file.ts, sealed at rest) after every change, so what was not sent
// when the client exited is sent at its next start, under the same client ids.
// Leaves out how items are shown (the terminal's lines, the web page's pending list).

import { rename } from 'node:fs/promises'
import { isMarshmelloError } from '../../errors.js'
import { newClientId, type ChatClient, type ChatMessage } from './chat-client.js'
import { Outbox, type OutboxItem } from './outbox.js'
import { systemClock, type Clock } from '../common/clock.js'
import { MAX_KEPT, OutboxFile } from './profile/outbox-file.js'

/** what a send resolves with: the stored message, or undefined for a DM known stored only by the server's refusal of a repeat */
export type Sent = ChatMessage | undefined

export interface KeptOutboxInit {
  client: ChatClient
  /** told of every state change (after it was kept) */
  onChange?: (item: OutboxItem<Sent>) => void
  /** a failed write of the file (the queue goes on in memory) */
  onKeepError?: (err: unknown) => void
  describe?: (err: unknown) => string
  now?: () => number
  /** every failed send with its error, before the outbox decides (the web page needs a key change's details) */
  onSendError?: (item: OutboxItem<Sent>, err: unknown) => void
  /** while paused with messages waiting, the oldest is tried this often (a probe of the network); default 3 s, 0 never */
  probeMs?: number
  clock?: Clock
}

export class KeptOutbox {
  readonly outbox: Outbox<Sent>
  private readonly file: OutboxFile
  private loaded = false
  private saving: Promise<void> = Promise.resolve()
  /** client ids sent before by an earlier run (or an earlier try): a refused repeat of one of those DMs means it is stored */
  private readonly tried = new Set<string>()
  private readonly offConnectivity: () => void
  private readonly probe: { cancel (): void } | null

  constructor (private readonly init: KeptOutboxInit) {
    const client = init.client
    this.file = client.outboxFile()
    this.outbox = new Outbox<Sent>({
      send: (item) => this.send(item),
      classify: (err) => client.connectivity.isNetworkError(err) ? 'offline' : 'refused',
      newClientId,
      describe: init.describe,
      now: init.now,
      maxItems: MAX_KEPT,
      onChange: (item) => {
        this.keep()
        init.onChange?.(item)
      },
    })
    if (!client.connectivity.online) this.outbox.pause()
    this.offConnectivity = client.connectivity.onChange((online) => { if (online) this.outbox.resume(); else this.outbox.pause() })
    // a send is itself the quickest sign that the network is back (a long-poll may hang
    // on its old circuit for its whole timeout): while paused, try the oldest again now and then
    const probeMs = init.probeMs ?? 3000
    this.probe = probeMs > 0
      ? (init.clock ?? systemClock).setInterval(() => {
        if (this.loaded && this.outbox.isPaused && this.outbox.pending().some((i) => i.state === 'queued')) this.outbox.resume()
      }, probeMs)
      : null
  }

  /**
   * Reads what an earlier run left and queues it again (it is sent unless offline);
   * returns those items. A file that cannot be read is set aside as outbox.json.damaged
   * and reported (`problem`), never a reason not to chat.
   */
  async restore (): Promise<{ restored: Array<OutboxItem<Sent>>, problem?: string }> {
    let problem: string | undefined
    let saved: Awaited<ReturnType<OutboxFile['load']>> = []
    try {
      saved = await this.file.load()
    } catch (err) {
      problem = isMarshmelloError(err) ? err.message : String(err)
      await rename(this.file.path, this.file.path + '.damaged').catch(() => {})
    }
    for (const s of saved) this.tried.add(s.clientId)
    this.loaded = true
    const restored = this.outbox.restore(saved)
    this.keep()
    return { restored, problem }
  }

  /** drops failed item n, from the file too; false when there is no failed item n */
  discard (n: number): boolean {
    const done = this.outbox.discard(n)
    if (done) this.keep()
    return done
  }

  /** stops sending and waits until the file holds what is unsent */
  async close (): Promise<void> {
    this.probe?.cancel()
    this.offConnectivity()
    this.outbox.close()
    this.keep()
    await this.saving
  }

  /** writes the unsent items (only after restore(): before it, the file holds an earlier run's) */
  private keep (): void {
    if (!this.loaded) return
    const items = this.outbox.snapshot()
    this.saving = this.file.save(items).catch((err) => this.init.onKeepError?.(err))
  }

  private async send (item: OutboxItem<Sent>): Promise<Sent> {
    try {
      return await this.sendOnce(item)
    } catch (err) {
      this.init.onSendError?.(item, err)
      throw err
    }
  }

  private async sendOnce (item: OutboxItem<Sent>): Promise<Sent> {
    const { client } = this.init
    const again = this.tried.has(item.clientId)
    this.tried.add(item.clientId)
    if (this.tried.size > 4 * MAX_KEPT) this.tried.delete(this.tried.values().next().value!)
    if ('room' in item.target) return await client.sendRoom(item.target.room, item.text, item.clientId)
    try {
      return await client.sendDm(item.target.to, item.text, item.clientId)
    } catch (err) {
      // a DM sealed afresh (after a restart) differs from the stored first copy: the
      // server refuses the repeat of its client id, which says the message is stored
      if (again && isMarshmelloError(err) && err.code === 'MM_ERR_CLIENT_ID_REUSED') return undefined
      throw err
    }
  }
}
