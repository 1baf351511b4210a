// What the terminal chat keeps between sessions (src/roles/client/profile/chat-state.ts):
// joined rooms, the place, what was seen; bounded; an edited file is an error, never
// silently reset.
import t from 'tap'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_JOINED, joinRoom, leaveRoom, loadChatState, updateChatState } from '../../../../src/roles/client/profile/chat-state.js'

async function tempHome (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-chatstate-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'home')
}

t.test('kept across loads', async (t) => {
  const home = await tempHome(t)
  t.same(await loadChatState(home, 'alice'), { rooms: [], seenRooms: {} }, 'empty at first')
  await updateChatState(home, 'alice', (s) => {
    joinRoom(s, 'lobby')
    joinRoom(s, 'dev')
    joinRoom(s, 'dev')
    s.seenRooms.dev = 'id-1'
    s.current = { dm: 'bob' }
  })
  const s = await loadChatState(home, 'alice')
  t.same(s.rooms, ['lobby', 'dev'], 'joined once each, in order')
  t.same(s.current, { dm: 'bob' })
  t.equal(s.seenRooms.dev, 'id-1')
  leaveRoom(s, 'dev')
  t.same([s.rooms, s.seenRooms.dev], [['lobby'], undefined], 'leaving forgets the room')
})

t.test('bounded', async (t) => {
  const home = await tempHome(t)
  await updateChatState(home, 'alice', (s) => {
    for (let i = 0; i < MAX_JOINED; i++) t.ok(joinRoom(s, `r${i}`))
    t.notOk(joinRoom(s, 'one-more'), `at most ${MAX_JOINED} rooms`)
  })
  t.equal((await loadChatState(home, 'alice')).rooms.length, MAX_JOINED)
})

t.test('an edited file is an error', async (t) => {
  const home = await tempHome(t)
  await updateChatState(home, 'alice', (s) => { joinRoom(s, 'lobby') })
  const file = join(home, 'profiles', 'alice', 'chat.json')
  for (const bad of ['{', JSON.stringify({ version: 2, rooms: [] }), JSON.stringify({ version: 1, rooms: ['Bad Room!'], seenRooms: {} }),
    JSON.stringify({ version: 1, rooms: [], seenRooms: {}, current: { room: '../x' } })]) {
    await writeFile(file, bad)
    await t.rejects(loadChatState(home, 'alice'), { code: 'MM_ERR_PROFILE_CORRUPT' }, bad)
  }
})

t.test("an older web UI's rooms.json is merged into chat.json once, then removed", async (t) => {
  const home = await tempHome(t)
  await updateChatState(home, 'alice', (s) => { joinRoom(s, 'lobby'); joinRoom(s, 'dev'); s.seenRooms.dev = 'id-9' })
  const legacy = join(home, 'profiles', 'alice', 'rooms.json')
  await writeFile(legacy, JSON.stringify({ rooms: ['dev', 'web-only', 'Bad Name!', 'second'] }))
  t.same((await loadChatState(home, 'alice')).rooms, ['lobby', 'dev', 'web-only', 'second'], 'merged: valid names, once each, after the ones there')
  const saved = await updateChatState(home, 'alice', () => {})
  t.equal(saved.seenRooms.dev, 'id-9', 'what was seen is kept')
  await t.rejects(access(legacy), { code: 'ENOENT' }, 'rooms.json is gone once chat.json holds its rooms')
  t.same((await loadChatState(home, 'alice')).rooms, ['lobby', 'dev', 'web-only', 'second'])
})
