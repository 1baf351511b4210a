// The circuit manager under failure, on a live network (server + 5 relays: a
// circuit needs 3 distinct relays, so two can die and circuits can still be built):
// a relay of the current circuit killed with SIGKILL mid-conversation is routed
// around transparently and the message is stored exactly once; a retried send
// (same client message id) is stored once; and a long-poll pending on a circuit
// that is rotated out still delivers the message sent after the rotation.
import t from 'tap'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { tmp } from '../../helpers/net.js'
import type { ChatClient } from '../../../src/roles/client/chat-client.js'
import { FakeClock } from '../../helpers/fake-clock.js'
import { liveNetwork } from './net-helper.js'

const live = liveNetwork(t, { relays: 5 })

async function user (name: string, rotate = 600, clock?: FakeClock): Promise<{ c: ChatClient, home: string }> {
  const home = tmp(`mm-${name}-`)
  const c = await live.client(home, rotate, clock)
  await c.register(name, `${name}-password`)
  await c.login(name, `${name}-password`)
  return { c, home }
}

const texts = async (c: ChatClient, room: string): Promise<string[]> => (await c.readRoom(room, { limit: 200 })).messages.map((m) => m.text!)
const count = (all: string[], text: string) => all.filter((x) => x === text).length

t.test('a relay of the current circuit killed mid-conversation', async (t) => {
  const { c: alice, home } = await user('alice')
  const { c: bob } = await user('bob')
  await alice.sendRoom('kill', 'before the kill')
  await bob.sendRoom('kill', 'bob answers')
  t.same(await texts(alice, 'kill'), ['before the kill', 'bob answers'])

  const path = alice.circuits.describe()
  t.equal(path.length, 4, 'three relays and the server')
  const sample = JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8')).guard.sampled
  const guard = sample.find((g: { confirmedAt?: number }) => g.confirmedAt !== undefined).fingerprint
  t.equal(path[0].fingerprint, guard, 'the entry is the confirmed guard kept in settings.json')

  // the middle relay: killing it leaves the guard usable
  const victim = live.net().relays.find((r) => r.fingerprint === path[1].fingerprint)!
  t.ok(victim, 'the middle hop is one of our relays')
  await victim.proc.kill('SIGKILL')
  const builtBefore = alice.circuits.built

  const m = await alice.sendRoom('kill', 'after the kill')
  t.equal(m.text, 'after the kill')
  t.ok(alice.circuits.built > builtBefore, 'a new circuit was built')
  const now = alice.circuits.describe()
  t.notOk(now.some((h) => h.fingerprint === victim.fingerprint), 'the new circuit avoids the dead relay')
  t.equal(now[0].fingerprint, guard, 'the guard is kept: it did not fail')

  const seen = await texts(bob, 'kill')
  t.equal(count(seen, 'after the kill'), 1, 'bob sees the message exactly once')
  t.same(seen, ['before the kill', 'bob answers', 'after the kill'])

  // the guard itself dies while a send is in flight: the request may or may not have
  // reached the server; the retry carries the same client id, so it is stored once
  const entry = live.net().relays.find((r) => r.fingerprint === now[0].fingerprint)!
  const sending = alice.sendRoom('kill', 'guard dies mid-send')
  await entry.proc.kill('SIGKILL')
  const m2 = await sending
  t.equal(m2.text, 'guard dies mid-send')
  const after = alice.circuits.describe()
  t.notOk(after.some((h) => h.fingerprint === entry.fingerprint || h.fingerprint === victim.fingerprint), 'the circuit avoids both dead relays')
  t.equal(count(await texts(bob, 'kill'), 'guard dies mid-send'), 1, 'stored exactly once')
})

t.test('a retried send with the same clientId is stored once', async (t) => {
  const { c: carol } = await user('carol')
  const first = await carol.sendRoom('retry', 'only once', 'fixed-client-id-1')
  const again = await carol.sendRoom('retry', 'only once', 'fixed-client-id-1')
  t.equal(again.id, first.id, 'the retry returns the stored message')
  const other = await carol.sendRoom('retry', 'only once', 'fixed-client-id-2')
  t.not(other.id, first.id, 'a new clientId is a new message')
  t.equal(count(await texts(carol, 'retry'), 'only once'), 2)
})

t.test('a long-poll pending across a rotation still gets the message', async (t) => {
  const clock = new FakeClock()
  const { c: dave } = await user('dave', 1, clock) // rotate every second of dave's clock
  const { c: erin } = await user('erin')
  const start = await dave.readRoom('rotate', { limit: 200 })
  t.same(start.messages, [])
  const builtBefore = dave.circuits.built
  const old = await dave.circuits.current()
  // count answers that come back through the old circuit (a retry would use the new one)
  let oldAnswers = 0
  const request = old.request.bind(old)
  old.request = (...args) => request(...args).then((r) => { oldAnswers++; return r })

  const t0 = Date.now()
  const poll = dave.readRoom('rotate', { after: start.cursor, wait: 10 })
  // once the poll is on the old circuit, dave's clock passes rotateMs (no sleep)
  for (let i = 0; old.pendingRequests === 0; i++) {
    if (i > 2000) throw new Error('the long-poll never went out on the old circuit')
    await new Promise((r) => setTimeout(r, 5))
  }
  await clock.advance(1500)
  // dave's next request rotates: a new circuit while the poll waits on the old one
  await dave.sendRoom('other-room', 'rotation trigger')
  t.ok(dave.circuits.built > builtBefore, 'a new circuit was built after rotateMs')
  t.not(await dave.circuits.current(), old, 'new requests use the new circuit')
  t.notOk(old.closed, 'the old circuit stays open while its long-poll is pending')
  await erin.sendRoom('rotate', 'sent after the rotation')
  const got = await poll
  t.same(got.messages.map((m) => m.text), ['sent after the rotation'], 'the pending long-poll returns the message')
  t.ok(Date.now() - t0 < 9000, 'woken by the message, not by the 10 s wait running out')
  t.equal(oldAnswers, 1, 'answered on the old circuit, not by a retry on the new one')
  t.ok(old.closed, 'the old circuit is torn down once its last request finished')
})
