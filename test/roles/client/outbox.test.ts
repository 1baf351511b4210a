// The outbox (src/roles/client/outbox.ts) with a scripted send: messages go out in the
// order typed with one client id each for life; a network failure keeps the message
// and pauses the queue until resume(), then the same client id is sent again (so a
// server that stored the first try stores it once); a refusal fails it and retry()
// sends it again; a bounded queue; nothing is sent while paused; a given client id is
// one item; the first outcome of a send; what is unsent taken out and put back (as the
// profile keeps it across a restart) under the same client ids.
import t from 'tap'
import { Outbox, type OutboxItem } from '../../../src/roles/client/outbox.js'

class Offline extends Error {}

/** a server that stores by client id (idempotent) and can be down or refuse */
function fakeServer () {
  const stored = new Map<string, string>()
  const calls: string[] = []
  let down = false
  let refuse: ((text: string) => boolean) = () => false
  let lostAnswers = 0
  return {
    stored,
    calls,
    setDown (v: boolean) { down = v },
    setRefuse (f: (text: string) => boolean) { refuse = f },
    /** the next n sends are stored but their answers lost */
    loseAnswers (n: number) { lostAnswers = n },
    async send (item: OutboxItem<string>): Promise<string> {
      calls.push(item.clientId)
      await Promise.resolve()
      if (down) throw new Offline('no circuit')
      if (refuse(item.text)) throw new Error('refused by the server')
      if (!stored.has(item.clientId)) stored.set(item.clientId, item.text)
      if (lostAnswers > 0) { lostAnswers--; throw new Offline('answer lost') }
      return `id-${item.clientId}`
    },
  }
}

function setup (opts: { maxItems?: number, maxAttempts?: number, giveUpMs?: number } = {}) {
  const server = fakeServer()
  let next = 0
  const changes: string[] = []
  const box = new Outbox<string>({
    send: (i) => server.send(i),
    classify: (err) => err instanceof Offline ? 'offline' : 'refused',
    newClientId: () => `c${++next}`,
    onChange: (i) => changes.push(`${i.n}:${i.state}`),
    ...opts,
  })
  return { server, box, changes }
}

t.test('in order, each stored once, states reported', async (t) => {
  const { server, box, changes } = setup()
  for (const text of ['one', 'two', 'three']) t.ok(box.add({ room: 'lobby' }, text).ok)
  await box.idle()
  t.same([...server.stored.values()], ['one', 'two', 'three'], 'stored in the order typed')
  t.same(box.pending(), [], 'nothing left')
  t.same(changes.filter((c) => c.startsWith('1:')), ['1:queued', '1:sending', '1:sent'])
})

t.test('offline: kept, paused, sent once when resumed, with the same client id', async (t) => {
  const { server, box } = setup()
  server.setDown(true)
  box.add({ to: 'bob' }, 'a')
  await box.idle()
  t.ok(box.isPaused, 'a network failure pauses the queue')
  t.same(box.pending().map((i) => [i.text, i.state]), [['a', 'queued']], 'the message is kept')
  box.add({ to: 'bob' }, 'b')
  await box.idle()
  t.equal(server.calls.length, 1, 'nothing is tried while paused')
  server.setDown(false)
  box.resume()
  await box.idle()
  t.same([...server.stored.values()], ['a', 'b'], 'both arrive, in order')
  t.same(server.calls, ['c1', 'c1', 'c2'], 'the retry carries the first client id')
})

t.test('an answer lost after the server stored it: the retry is stored once', async (t) => {
  const { server, box } = setup()
  server.loseAnswers(1)
  box.add({ room: 'lobby' }, 'once')
  await box.idle()
  t.ok(box.isPaused)
  box.resume()
  await box.idle()
  t.equal(server.stored.size, 1, 'one stored message')
  t.same(server.calls, ['c1', 'c1'])
})

t.test('pause() before sending: added messages wait', async (t) => {
  const { server, box } = setup()
  box.pause()
  box.add({ room: 'lobby' }, 'later')
  await box.idle()
  t.same(server.calls, [], 'not tried')
  box.resume()
  await box.idle()
  t.same([...server.stored.values()], ['later'])
})

t.test('a refusal fails the message (the next still goes); retry sends it again', async (t) => {
  const { server, box } = setup()
  let refusing = true
  server.setRefuse((text) => refusing && text === 'bad')
  box.add({ room: 'lobby' }, 'bad')
  box.add({ room: 'lobby' }, 'good')
  await box.idle()
  t.same([...server.stored.values()], ['good'])
  const failed = box.pending()
  t.same(failed.map((i) => [i.n, i.state, i.error]), [[1, 'failed', 'refused by the server']])
  t.notOk(box.retry(2), 'only a failed item can be retried')
  refusing = false
  t.ok(box.retry(1))
  await box.idle()
  t.same([...server.stored.values()], ['good', 'bad'], 'sent on retry')
  t.same(box.pending(), [])
})

t.test('bounded: a full queue refuses; too many network failures fail the item', async (t) => {
  const { server, box } = setup({ maxItems: 2, maxAttempts: 2, giveUpMs: 0 })
  server.setDown(true)
  t.ok(box.add({ room: 'r' }, '1').ok)
  t.ok(box.add({ room: 'r' }, '2').ok)
  t.same(box.add({ room: 'r' }, '3'), { ok: false, reason: 'full' }, 'the third is refused, not dropped silently')
  await box.idle()
  box.resume()
  await box.idle()
  const [first] = box.pending()
  t.equal(first.state, 'failed', 'after maxAttempts network failures the item fails')
  t.equal(first.error, 'no circuit')
  t.ok(box.discard(first.n))
  t.equal(box.pending().length, 1)
})

t.test('a network coming back by fits (resumed, failing again) does not fail a message typed minutes ago', async (t) => {
  const { server, box } = setup({ maxAttempts: 2 })
  server.setDown(true)
  box.add({ room: 'r' }, 'patient')
  for (let i = 0; i < 8; i++) { box.resume(); await box.idle() }
  t.equal(box.pending()[0].state, 'queued', 'still queued after 9 failed tries within the give-up time')
  server.setDown(false)
  box.resume()
  await box.idle()
  t.same([...server.stored.values()], ['patient'], 'and sent once the network holds')
})

t.test('close stops sending and returns what was not stored', async (t) => {
  const { server, box } = setup()
  server.setDown(true)
  box.add({ room: 'r' }, 'x')
  await box.idle()
  const left = box.close()
  box.resume()
  await box.idle()
  t.same(left.map((i) => i.text), ['x'])
  t.equal(server.calls.length, 1, 'nothing sent after close')
})

t.test('a given client id is one item; firstOutcome says how the first try went', async (t) => {
  const { server, box } = setup()
  const a = box.add({ room: 'lobby' }, 'typed in the page', { clientId: 'page-1' })
  t.ok(a.ok && a.item.clientId === 'page-1', 'the given client id is used')
  const again = box.add({ room: 'lobby' }, 'typed in the page', { clientId: 'page-1' })
  t.ok(again.ok && again.known && again.item === (a.ok ? a.item : null), 'a resubmit is the same item')
  t.equal(await box.firstOutcome(a.ok ? a.item.n : 0), 'sent')
  t.same([...server.stored.values()], ['typed in the page'])
  server.setRefuse((text) => text === 'no')
  const r = box.add({ room: 'lobby' }, 'no')
  t.equal(await box.firstOutcome(r.ok ? r.item.n : 0), 'failed')
  server.setDown(true)
  const q = box.add({ room: 'lobby' }, 'offline')
  t.equal(await box.firstOutcome(q.ok ? q.item.n : 0), 'queued', 'offline: queued, and the queue pauses')
  const later = box.add({ room: 'lobby' }, 'later')
  t.equal(await box.firstOutcome(later.ok ? later.item.n : 0), 'queued', 'paused: queued at once')
  box.close()
})

t.test('snapshot and restore: what was unsent goes out at the next start under its old client ids, stored once', async (t) => {
  const first = setup()
  first.server.setDown(true)
  first.box.add({ room: 'lobby' }, 'one')
  first.box.add({ to: 'bob' }, 'two')
  await first.box.idle()
  first.server.setRefuse((text) => text === 'three')
  first.server.setDown(false)
  first.box.resume()
  await first.box.idle()
  t.same([...first.server.stored.values()], ['one', 'two'])
  first.server.setDown(true)
  first.box.add({ room: 'dev' }, 'four') // queued, then the process ends before it is sent
  await first.box.idle()
  // 'one' was stored but its answer lost: the run ended thinking it unsent
  first.server.stored.delete('c1')
  const kept = [{ clientId: 'c1', target: { room: 'lobby' }, text: 'one', queuedAt: 5, state: 'queued' as const }, ...first.box.snapshot()]
  t.same(first.box.snapshot().map((s) => [s.clientId, s.text, s.state]), [['c3', 'four', 'queued']], 'the snapshot holds what is unsent')
  first.box.close()

  const second = setup()
  second.server.stored.set('c1', 'one') // the server stored it in the first run
  const restored = second.box.restore([...kept, { clientId: 'f1', target: { room: 'lobby' }, text: 'refused before', queuedAt: 6, state: 'failed', error: 'refused by the server' }])
  t.same(restored.map((i) => [i.n, i.clientId]), [[1, 'c1'], [2, 'c3'], [3, 'f1']], 'numbered afresh, same client ids')
  t.equal(restored[2].state, 'failed', 'a failed one stays failed (it waits for retry)')
  t.same(second.box.restore([kept[1]]), [], 'an id queued already is not restored twice')
  await second.box.idle()
  t.same(second.server.calls, ['c1', 'c3'], 'the queued ones are sent with their old client ids')
  t.same([...second.server.stored.entries()], [['c1', 'one'], ['c3', 'four']], 'each stored once')
  t.same(second.box.snapshot().map((s) => [s.clientId, s.state, s.error]), [['f1', 'failed', 'refused by the server']])
  second.box.close()
})
