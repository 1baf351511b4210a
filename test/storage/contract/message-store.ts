// The MessageStore contract: every implementation (nedb, MongoDB) must pass it.
// `factory` opens a fresh, empty store each time it is called; the suite closes it.
// onMessage may be asynchronous (change streams, polling): the suite waits up to 5 s.

import type { Test } from 'tap'
import type { MessageStore, NewMessage, StoredMessage } from '../../../src/storage/types.js'

let seq = 0
const msg = (m: Partial<NewMessage> & { from: string }): NewMessage =>
  ({ clientId: `c${++seq}`, body: `body ${seq}`, sentAt: 1_700_000_000_000 + seq, ...m })

function nextMessage (s: MessageStore, match: (m: StoredMessage) => boolean, ms = 5_000): Promise<StoredMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error('no onMessage within ' + ms + ' ms')) }, ms)
    const off = s.onMessage(m => { if (match(m)) { clearTimeout(timer); off(); resolve(m) } })
  })
}

export function messageStoreContract (t: Test, name: string, factory: () => Promise<MessageStore>): void {
  t.test(`${name}: put and list a room`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const sent = msg({ from: 'alice', room: 'general', body: 'hello' })
    const { message, created } = await s.put(sent)
    t.equal(created, true)
    t.type(message.id, 'string')
    t.same(message, { ...sent, id: message.id })
    t.same(await s.list({ room: 'general', limit: 10 }), [message])
    t.same(await s.list({ room: 'other', limit: 10 }), [])
    t.equal(await s.count(), 1)
    await t.rejects(s.put({ from: 'alice', clientId: 'x', body: 'b', sentAt: 1 }), { code: 'MM_ERR_MESSAGE_TARGET' })
  })

  t.test(`${name}: put is idempotent per (from, clientId)`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const first = await s.put(msg({ from: 'alice', room: 'r', clientId: 'same', body: 'one' }))
    const again = await s.put(msg({ from: 'alice', room: 'r', clientId: 'same', body: 'retry' }))
    t.equal(again.created, false)
    t.same(again.message, first.message, 'the retry returns the first copy')
    const other = await s.put(msg({ from: 'bob', room: 'r', clientId: 'same' }))
    t.equal(other.created, true, 'clientId is scoped to its sender')
    const racing = await Promise.all([1, 2, 3, 4].map(() => s.put(msg({ from: 'carol', room: 'r', clientId: 'race' }))))
    t.equal(racing.filter(r => r.created).length, 1, 'concurrent retries store once')
    t.equal(new Set(racing.map(r => r.message.id)).size, 1)
    t.equal(await s.count(), 3)
  })

  t.test(`${name}: pagination with after`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const ids: string[] = []
    for (let i = 0; i < 25; i++) {
      ids.push((await s.put(msg({ from: `u${i % 3}`, room: 'paged' }))).message.id)
      if (i % 5 === 0) await s.put(msg({ from: 'noise', room: 'elsewhere' }))
    }
    t.same([...ids].sort(), ids, 'ids sort in arrival order')
    const pages: string[][] = []
    let after: string | undefined
    for (;;) {
      const page = await s.list({ room: 'paged', after, limit: 10 })
      if (page.length === 0) break
      pages.push(page.map(m => m.id))
      after = page[page.length - 1].id
    }
    t.same(pages.map(p => p.length), [10, 10, 5])
    t.same(pages.flat(), ids)
  })

  t.test(`${name}: newest gives the last page, oldest first`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const room: string[] = []
    const dms: string[] = []
    for (let i = 0; i < 30; i++) {
      room.push((await s.put(msg({ from: 'alice', room: 'tail' }))).message.id)
      await s.put(msg({ from: 'noise', room: 'elsewhere' }))
      if (i % 2 === 0) dms.push((await s.put(msg({ from: i % 4 === 0 ? 'carol' : 'dave', to: 'carol' }))).message.id)
      else dms.push((await s.put(msg({ from: 'carol', to: 'erin' }))).message.id)
    }
    t.same((await s.list({ room: 'tail', newest: true, limit: 7 })).map(m => m.id), room.slice(-7))
    t.same((await s.list({ room: 'tail', newest: true, limit: 100 })).map(m => m.id), room, 'a limit past the room: all of it')
    t.same((await s.list({ dmUser: 'carol', newest: true, limit: 5 })).map(m => m.id), dms.slice(-5), 'DMs both ways, newest five')
    await t.rejects(s.list({ room: 'tail', newest: true, after: room[0], limit: 5 }), { code: 'MM_ERR_MESSAGE_QUERY' })
  })

  t.test(`${name}: before pages backwards through older history`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const room: string[] = []
    const dms: string[] = []
    for (let i = 0; i < 23; i++) {
      room.push((await s.put(msg({ from: `u${i % 3}`, room: 'old' }))).message.id)
      await s.put(msg({ from: 'noise', room: 'elsewhere' }))
      dms.push((await s.put(i % 2 === 0 ? msg({ from: 'bob', to: 'carol' }) : msg({ from: 'carol', to: 'dave' }))).message.id)
      await s.put(msg({ from: 'erin', to: 'frank' }))
    }
    // from the newest page back to the first message, as a client scrolling up does
    const pages: string[][] = []
    let before = (await s.list({ room: 'old', newest: true, limit: 5 })).map(m => m.id)
    pages.push(before)
    for (;;) {
      const page = (await s.list({ room: 'old', before: before[0], limit: 5 })).map(m => m.id)
      if (page.length === 0) break
      t.ok(page.length <= 5, 'at most limit')
      pages.unshift(page)
      before = page
    }
    t.same(pages.map(p => p.length), [3, 5, 5, 5, 5], 'full pages back to the first message')
    t.same(pages.flat(), room, 'every message once, oldest first, none of another room')
    t.same((await s.list({ room: 'old', before: room[10], limit: 100 })).map(m => m.id), room.slice(0, 10), 'a limit past the start: everything before')
    t.same(await s.list({ room: 'old', before: room[0], limit: 5 }), [], 'nothing before the first')
    t.same(await s.list({ room: 'nowhere', before: room[10], limit: 5 }), [])
    t.same((await s.list({ dmUser: 'carol', before: dms[20], limit: 4 })).map(m => m.id), dms.slice(16, 20), "carol's DMs both ways, the four before")
    const between = (await s.list({ room: 'old', before: room[5] + '0', limit: 2 })).map(m => m.id)
    t.same(between, [room[4], room[5]], 'before need not be a stored id (a cursor between two ids)')
    await t.rejects(s.list({ room: 'old', before: room[5], after: room[1], limit: 5 }), { code: 'MM_ERR_MESSAGE_QUERY' })
    await t.rejects(s.list({ room: 'old', before: room[5], newest: true, limit: 5 }), { code: 'MM_ERR_MESSAGE_QUERY' })
  })

  t.test(`${name}: before skips expired messages`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const now = Date.now()
    const a = (await s.put(msg({ from: 'alice', room: 'r' }))).message
    await s.put(msg({ from: 'alice', room: 'r', expiresAt: now - 1 }))
    const c = (await s.put(msg({ from: 'alice', room: 'r', expiresAt: now + 3_600_000 }))).message
    const d = (await s.put(msg({ from: 'alice', room: 'r' }))).message
    t.same(await s.list({ room: 'r', before: d.id, limit: 5 }), [a, c])
  })

  t.test(`${name}: rooms lists the rooms that hold messages, by name, paged`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    t.same(await s.rooms({ limit: 10 }), [], 'an empty store has no rooms')
    const last: Record<string, StoredMessage> = {}
    const counts: Record<string, number> = {}
    const names = ['lobby', 'b-side', 'a_room', 'zeta', 'a-room', 'mid9', 'b_side']
    for (let i = 0; i < 30; i++) {
      const room = names[(i * 5) % names.length]
      last[room] = (await s.put(msg({ from: `u${i % 4}`, room, sentAt: 1_800_000_000_000 + i }))).message
      counts[room] = (counts[room] ?? 0) + 1
      if (i % 7 === 0) await s.put(msg({ from: 'alice', to: 'bob' })) // DMs are not rooms
    }
    await s.put(msg({ from: 'alice', room: 'gone', expiresAt: Date.now() - 1 }))
    const sorted = Object.keys(counts).sort()
    t.same(sorted, ['a-room', 'a_room', 'b-side', 'b_side', 'lobby', 'mid9', 'zeta'], 'bytewise: - before _')
    const want = sorted.map(name => ({ name, messages: counts[name], lastId: last[name].id, lastAt: last[name].sentAt }))
    t.same(await s.rooms({ limit: 100 }), want, 'names, counts and the newest message; no DM peer, no expired room')
    const paged = []
    let after: string | undefined
    for (;;) {
      const page = await s.rooms({ after, limit: 3 })
      if (page.length === 0) break
      t.ok(page.length <= 3)
      paged.push(...page)
      after = page[page.length - 1].name
    }
    t.same(paged, want, 'pages of three cover every room once')
    t.same(await s.rooms({ after: 'm', limit: 2 }), want.slice(5, 7), 'after need not be a room')
    const more = (await s.put(msg({ from: 'carol', room: 'a-room', sentAt: 1_900_000_000_000 }))).message
    t.same((await s.rooms({ limit: 1 }))[0], { name: 'a-room', messages: counts['a-room'] + 1, lastId: more.id, lastAt: more.sentAt }, 'a new message counts at once')
    await s.put(msg({ from: 'carol', room: 'soon', expiresAt: Date.now() + 400 }))
    t.ok((await s.rooms({ limit: 100 })).some(r => r.name === 'soon'))
    await new Promise(resolve => setTimeout(resolve, 450))
    t.notOk((await s.rooms({ limit: 100 })).some(r => r.name === 'soon'), 'a room whose messages all expired is not listed (before any sweep)')
    await t.rejects(s.rooms({ limit: 0 }), { code: 'MM_ERR_MESSAGE_QUERY' })
  })

  t.test(`${name}: dmUser returns DMs in both directions only`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const ab = (await s.put(msg({ from: 'alice', to: 'bob' }))).message
    await s.put(msg({ from: 'alice', room: 'general' }))
    const ba = (await s.put(msg({ from: 'bob', to: 'alice' }))).message
    const bc = (await s.put(msg({ from: 'bob', to: 'carol' }))).message
    const ca = (await s.put(msg({ from: 'carol', to: 'alice' }))).message
    const self = (await s.put(msg({ from: 'alice', to: 'alice' }))).message
    t.same(await s.list({ dmUser: 'alice', limit: 10 }), [ab, ba, ca, self])
    t.same(await s.list({ dmUser: 'alice', limit: 2 }), [ab, ba])
    t.same(await s.list({ dmUser: 'alice', after: ba.id, limit: 10 }), [ca, self])
    t.same(await s.list({ dmUser: 'bob', limit: 10 }), [ab, ba, bc])
    t.same(await s.list({ dmUser: 'dave', limit: 10 }), [])
  })

  t.test(`${name}: deleteDms removes the recipient's acknowledged DMs only`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const toBob = (await s.put(msg({ from: '', to: 'bob' }))).message
    const toBob2 = (await s.put(msg({ from: '', to: 'bob' }))).message
    const toCarol = (await s.put(msg({ from: '', to: 'carol' }))).message
    const room = (await s.put(msg({ from: 'bob', room: 'r' }))).message
    t.equal(await s.deleteDms('bob', []), 0)
    t.equal(await s.deleteDms('bob', [toBob.id, toCarol.id, room.id, 'zzz']), 1, 'only bob\'s DM among the ids')
    t.same(await s.list({ dmUser: 'bob', limit: 10 }), [toBob2])
    t.same(await s.list({ dmUser: 'carol', limit: 10 }), [toCarol])
    t.equal(await s.count(), 3)
  })

  t.test(`${name}: expired messages are hidden, then deleted`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const now = Date.now()
    await s.put(msg({ from: 'alice', room: 'r', expiresAt: now - 1_000 }))
    await s.put(msg({ from: 'alice', room: 'r', expiresAt: now - 10 }))
    const future = (await s.put(msg({ from: 'alice', room: 'r', expiresAt: now + 3_600_000 }))).message
    const forever = (await s.put(msg({ from: 'alice', room: 'r' }))).message
    t.same(await s.list({ room: 'r', limit: 10 }), [future, forever], 'expired messages are not listed')
    t.equal(await s.deleteExpired(now), 2)
    t.equal(await s.deleteExpired(now), 0, 'nothing left to delete')
    t.equal(await s.count(), 2)
    t.equal(await s.deleteExpired(now + 3_600_000), 1)
    t.same(await s.list({ room: 'r', limit: 10 }), [forever])
  })

  t.test(`${name}: onMessage fires for new messages only`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const seen: string[] = []
    const off = s.onMessage(m => { seen.push(m.clientId) })
    const waiting = nextMessage(s, m => m.clientId === 'n1')
    const { message } = await s.put(msg({ from: 'alice', room: 'r', clientId: 'n1' }))
    t.same(await waiting, message)
    await s.put(msg({ from: 'alice', room: 'r', clientId: 'n1' })) // a retry: not new
    off()
    const later = nextMessage(s, m => m.clientId === 'n2')
    await s.put(msg({ from: 'alice', room: 'r', clientId: 'n2' }))
    await later
    t.same(seen, ['n1'], 'once per message, and not after unsubscribing')
  })

  t.test(`${name}: all() yields every message in id order`, async t => {
    const s = await factory()
    t.teardown(() => s.close())
    const ids: string[] = []
    for (let i = 0; i < 620; i++) {
      ids.push((await s.put(i % 2 === 0 ? msg({ from: 'a', room: 'r' }) : msg({ from: 'a', to: 'b' }))).message.id)
    }
    const seen: string[] = []
    for await (const m of s.all()) seen.push(m.id)
    t.same(seen, ids)
  })
}
