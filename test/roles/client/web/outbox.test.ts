// The web session's pieces beside the one outbox (test/roles/client/outbox.test.ts has
// that): which errors are the network's, the message pages of a timeline (newest first,
// older before an id, and whether the server holds more), the one message limit in
// plain words.
import t from 'tap'
import { MarshmelloError } from '../../../../src/errors.js'
import { transient } from '../../../../src/roles/client/web/session.js'
import { Timeline } from '../../../../src/roles/client/web/timeline.js'
import { MESSAGE_MAX_CHARS, messageLength, messageTooLong } from '../../../../src/roles/client/web/ui/limits.js'

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
  t.equal(tl.olderOnServer, false, 'nothing said the server holds more')
  for (let i = 120; i < 1001; i++) tl.add({ id: `m${String(i).padStart(4, '0')}`, from: 'a', room: 'r', text: String(i), sentAt: 1000 + i })
  t.equal(tl.olderOnServer, true, 'once the cache dropped its oldest, older ones are on the server')
})

t.test('the one message limit, in code points, said in plain words', async (t) => {
  t.equal(MESSAGE_MAX_CHARS, 4000)
  t.equal(messageLength('😀'.repeat(3)), 3, 'an emoji is one character, as the server counts')
  t.equal(messageTooLong('a'.repeat(MESSAGE_MAX_CHARS)), null)
  t.equal(messageTooLong('😀'.repeat(MESSAGE_MAX_CHARS)), null)
  t.match(messageTooLong('a'.repeat(10_000)), /10,000 characters; the limit is 4,000\. Shorten it by 6,000/)
})
