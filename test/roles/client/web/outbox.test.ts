// The web session's outbox (src/roles/client/web/outbox.ts) and message pages
// (timeline.ts) in-process with a fake clock: sends in the order typed, a first try
// refused for good leaves nothing queued, sends typed while the network is down are
// queued and all stored exactly once when it is back, one that stays down past the
// give-up time fails and Retry sends it; the one message limit in plain words.
import t from 'tap'
import { MarshmelloError } from '../../../../src/errors.js'
import { Outbox, OUTBOX_MAX } from '../../../../src/roles/client/web/outbox.js'
import { transient } from '../../../../src/roles/client/web/session.js'
import { Timeline } from '../../../../src/roles/client/web/timeline.js'
import { MESSAGE_MAX_CHARS, messageLength, messageTooLong } from '../../../../src/roles/client/web/ui/limits.js'
import type { OutboxView } from '../../../../src/roles/client/web/wire.js'
import { FakeClock, settle, until } from '../../../helpers/fake-clock.js'

const lobby = { kind: 'room' as const, name: 'lobby' }

/** a fake server: stores once per clientId while `up`, refuses with `refuse` when set */
function harness () {
  const clock = new FakeClock()
  const stored = new Map<string, string>()
  const changes: OutboxView[] = []
  const network: boolean[] = []
  const net = { up: true, refuse: null as MarshmelloError | null }
  const box = new Outbox({
    clock,
    retryMs: 1000,
    giveUpMs: 60_000,
    transient,
    onChange: (i) => changes.push(i),
    onNetwork: (ok) => network.push(ok),
    send: async (item) => {
      await settle(2)
      if (net.refuse) throw net.refuse
      if (!net.up) throw new MarshmelloError('MM_ERR_CIRCUIT_BUILD', 'hop 1 could not be reached')
      if (!stored.has(item.clientId)) stored.set(item.clientId, item.text)
      return { id: 'm-' + item.clientId, from: 'alice', sentAt: clock.now(), room: 'lobby', text: item.text }
    },
  })
  return { clock, stored, changes, network, net, box }
}

t.test('online: stored at once, nothing left queued', async (t) => {
  const h = harness()
  const r = await h.box.submit(lobby, 'hello', 'c1')
  t.equal(r.outcome, 'sent')
  t.equal(r.item.message?.text, 'hello')
  t.same([...h.stored.values()], ['hello'])
  t.same(h.box.list(), [])
  t.same(h.changes.map((c) => c.state), ['sent'], 'announced once, as sent')
})

t.test('a first try refused for good leaves nothing queued', async (t) => {
  const h = harness()
  h.net.refuse = new MarshmelloError('MM_ERR_KEY_CHANGED', 'bob\'s key changed')
  const r = await h.box.submit({ kind: 'dm', name: 'bob' }, 'secret', 'c1')
  t.equal(r.outcome, 'refused')
  t.equal(r.outcome === 'refused' && (r.error as MarshmelloError).code, 'MM_ERR_KEY_CHANGED')
  t.same(h.box.list(), [], 'not queued: the page keeps the text')
  t.same(h.changes, [], 'and never announced')
  t.equal(h.stored.size, 0)
})

t.test('typed while the network is down: queued, then all stored once, in order', async (t) => {
  const h = harness()
  h.net.up = false
  const first = await h.box.submit(lobby, 'one', 'c1')
  t.equal(first.outcome, 'queued', 'the first try failed: queued')
  const second = await h.box.submit(lobby, 'two', 'c2')
  const third = await h.box.submit(lobby, 'three', 'c3')
  t.same([second.outcome, third.outcome], ['queued', 'queued'], 'later ones queue behind it without waiting')
  t.same(h.box.list().map((i) => [i.text, i.state]), [['one', 'sending'], ['two', 'sending'], ['three', 'sending']])
  for (let i = 0; i < 5; i++) await h.clock.advance(1000)
  t.equal(h.stored.size, 0, 'nothing stored while down')
  t.ok(h.box.list()[0].attempts > 1, 'retried')
  t.same(h.network.filter((ok) => !ok).length > 0, true, 'the network was reported down')

  h.net.up = true
  await h.clock.advance(1000)
  t.ok(await until(() => h.box.list().length === 0), 'the queue drains')
  t.same([...h.stored.values()], ['one', 'two', 'three'], 'each stored once, in the order typed')
  t.same(h.changes.filter((c) => c.state === 'sent').map((c) => c.text), ['one', 'two', 'three'])
  t.equal(h.network.at(-1), true, 'and the network reported back')
})

t.test('down past the give-up time: failed with the reason; Retry sends it', async (t) => {
  const h = harness()
  h.net.up = false
  await h.box.submit(lobby, 'late', 'c1')
  for (let i = 0; i < 62; i++) await h.clock.advance(1000)
  t.ok(await until(() => h.box.list()[0]?.state === 'failed'), 'failed')
  t.match(h.box.list()[0].error, /not sent: the network could not be reached/)
  const sleeps = h.box.list()[0].attempts
  await h.clock.advance(5000)
  t.equal(h.box.list()[0].attempts, sleeps, 'a failed item is not retried on its own')
  h.net.up = true
  t.equal(h.box.retry('c1').state, 'sending')
  t.ok(await until(() => h.box.list().length === 0), 'Retry sent it')
  t.same([...h.stored.values()], ['late'])
  t.throws(() => h.box.retry('nope'), { code: 'MM_ERR_NOT_FOUND' })
})

t.test('a repeated client id is one item; the queue is bounded', async (t) => {
  const h = harness()
  h.net.up = false
  await h.box.submit(lobby, 'x', 'same')
  const again = await h.box.submit(lobby, 'x', 'same')
  t.equal(again.outcome, 'queued')
  t.equal(h.box.list().length, 1)
  for (let i = 1; i < OUTBOX_MAX; i++) await h.box.submit(lobby, 'm' + i, 'id' + i)
  await t.rejects(h.box.submit(lobby, 'one too many', 'over'), { code: 'MM_ERR_BUSY' })
  h.box.close()
})

t.test('transient: the network\'s errors, not the request\'s', async (t) => {
  t.ok(transient(new MarshmelloError('MM_ERR_TIMEOUT', 'x')))
  t.ok(transient(new MarshmelloError('MM_ERR_CIRCUIT_BUILD', 'x')))
  t.ok(transient(new TypeError('fetch failed')))
  t.notOk(transient(new MarshmelloError('MM_ERR_KEY_CHANGED', 'x')))
  t.notOk(transient(new MarshmelloError('MM_ERR_BAD_TEXT', 'x')))
  t.notOk(transient(new MarshmelloError('MM_ERR_NOT_LOGGED_IN', 'x')))
})

t.test('pages of a timeline: newest first, then older before an id', async (t) => {
  const tl = new Timeline()
  for (let i = 0; i < 120; i++) tl.add({ id: `m${String(i).padStart(3, '0')}`, from: 'a', room: 'r', text: String(i), sentAt: 1000 + i })
  const p1 = tl.page()
  t.equal(p1.messages.length, 50)
  t.equal(p1.messages[0].text, '70')
  t.equal(p1.messages.at(-1)!.text, '119')
  t.equal(p1.older, true)
  const p2 = tl.page({ before: p1.messages[0].id })
  t.same([p2.messages[0].text, p2.messages.at(-1)!.text, p2.older], ['20', '69', true])
  const p3 = tl.page({ before: p2.messages[0].id })
  t.same([p3.messages.length, p3.older], [20, false], 'the oldest cached page says there is no more')
  t.same(tl.page({ before: 'unknown' }).messages, [])
})

t.test('the one message limit, in code points, said in plain words', async (t) => {
  t.equal(MESSAGE_MAX_CHARS, 4000)
  t.equal(messageLength('😀'.repeat(3)), 3, 'an emoji is one character, as the server counts')
  t.equal(messageTooLong('a'.repeat(MESSAGE_MAX_CHARS)), null)
  t.equal(messageTooLong('😀'.repeat(MESSAGE_MAX_CHARS)), null)
  t.match(messageTooLong('a'.repeat(10_000)), /10,000 characters; the limit is 4,000\. Shorten it by 6,000/)
})
