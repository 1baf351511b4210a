// Joining a conversation with a long history: the client reads the newest page in one
// request (latest=1) through the onion, for a room and for DMs, and follows from there
// with the cursor it got (what the terminal and web UIs do when a room is opened).
import t from 'tap'
import { tmp } from '../../helpers/net.js'
import type { ChatClient } from '../../../src/roles/client/chat-client.js'
import { liveNetwork } from './net-helper.js'

const live = liveNetwork(t)

async function user (name: string): Promise<ChatClient> {
  const c = await live.client(tmp(`mm-${name}-`))
  await c.register(name, `${name}-password`)
  await c.login(name, `${name}-password`)
  return c
}

t.test('the newest page of a long room, then what comes after it', async (t) => {
  const alice = await user('alice')
  const bob = await user('bob')
  for (let i = 0; i < 45; i++) await alice.sendRoom('long', `m${i}`)
  const page = await bob.readRoom('long', { latest: true, limit: 10 })
  t.same(page.messages.map((m) => m.text), Array.from({ length: 10 }, (_, i) => `m${35 + i}`), 'the ten newest, oldest first')
  await alice.sendRoom('long', 'after joining')
  const next = await bob.readRoom('long', { after: page.cursor, wait: 5 })
  t.same(next.messages.map((m) => m.text), ['after joining'], 'the cursor of the newest page follows the room')

  for (let i = 0; i < 5; i++) await alice.sendDm('bob', `dm${i}`)
  const dms = await bob.readDms({ latest: true, limit: 2 })
  t.same(dms.messages.map((m) => [m.from, m.text]), [['alice', 'dm3'], ['alice', 'dm4']], 'the newest DMs, decrypted')
})
