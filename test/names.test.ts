// The name rules (src/names.ts): valid and invalid usernames and room names, and that
// every place that checks them agrees case by case: the server's API schemas (through
// a real in-process gateway), the profile files, and the browser's HTML patterns.
import t from 'tap'
import {
  ROOM_HTML_PATTERN, ROOM_RULE, USERNAME_HTML_PATTERN, USERNAME_RULE,
  isRoomName, isUsername, toRoomName, toUsername,
} from '../src/names.js'
import { checkUsername } from '../src/roles/client/profile/files.js'
import { call, signUp, stack } from './roles/server/api/helpers.js'
import { randomBytes } from 'node:crypto'
import { PAD_BUCKETS } from '../src/onion/sealed/padding.js'
import { SEALED_OVERHEAD } from '../src/onion/sealed/sealed-envelope.js'

/** [typed, stored form or null] */
const USERS: Array<[string, string | null]> = [
  ['abc', 'abc'], ['Alice', 'alice'], ['ALICE_01', 'alice_01'], ['a-_', 'a-_'], ['___', '___'],
  ['x'.repeat(32), 'x'.repeat(32)], ['0123456789', '0123456789'],
  ['', null], ['a', null], ['ab', null], ['x'.repeat(33), null], ['a b', null], ['a.b', null],
  ['émile', null], ['\u212Aate', null], ['İlker', null], ['bob\n', null], ['\nbob', null], ['bob ', null],
  ['a/b', null], ['../x', null], ['a%b', null], ['ａｂｃ', null], ['a\u0000b', null],
]

const ROOMS: Array<[string, string | null]> = [
  ['a', 'a'], ['lobby', 'lobby'], ['New-Room', 'new-room'], ['_', '_'], ['r'.repeat(32), 'r'.repeat(32)],
  ['', null], ['r'.repeat(33), null], ['sp ace', null], ['d.ot', null], ['é', null], ['\u212A', null],
  ['room!', null], ['a/b', null], ['#lobby', null], ['lobby\n', null],
]

t.test('usernames: 3–32 of letters, digits, _ and -, stored lowercase', async (t) => {
  for (const [typed, stored] of USERS) {
    t.equal(toUsername(typed), stored, JSON.stringify(typed))
    t.equal(isUsername(typed), stored !== null && stored === typed, `${JSON.stringify(typed)} in stored form`)
    if (stored !== null) t.ok(isUsername(stored), `${stored} is a stored name`)
  }
  t.notOk(isUsername(undefined))
  t.notOk(isUsername(42))
  t.match(USERNAME_RULE, /3–32/)
})

t.test('room names: 1–32 of letters, digits, _ and -, stored lowercase', async (t) => {
  for (const [typed, stored] of ROOMS) {
    t.equal(toRoomName(typed), stored, JSON.stringify(typed))
    if (stored !== null) t.ok(isRoomName(stored), `${stored} is a stored room name`)
  }
  t.notOk(isRoomName('Lobby'), 'the stored form is lowercase')
  t.notOk(isRoomName(null))
  t.match(ROOM_RULE, /1–32/)
})

t.test('the server API and the client check agree on every case', async (t) => {
  const { gateway } = await stack(t)
  const token = await signUp(gateway, 'checker')
  for (const [typed, stored] of USERS) {
    // GET /v1/users/:name/keys: a name the server takes is looked up (no such user yet);
    // any other is refused by the router or the params schema before any lookup
    const r = await call(gateway, 'GET', `/v1/users/${encodeURIComponent(typed)}/keys`, { token })
    const looked = r.status === 404 && r.json?.error?.code === 'MM_ERR_USER_UNKNOWN'
    t.equal(looked, stored !== null, `server on user ${JSON.stringify(typed)}: ${r.status} ${r.json?.error?.code}`)
    const dm = await call(gateway, 'POST', '/v1/dms/sealed', { body: { to: typed, envelope: randomBytes(SEALED_OVERHEAD + PAD_BUCKETS[0]).toString('base64url') } })
    const dmRefused = dm.status === 400 && /^body\/to /.test(dm.json?.error?.message ?? '')
    t.equal(dmRefused, stored === null, `server on DM to ${JSON.stringify(typed)}: ${dm.status} ${dm.json?.error?.message}`)
  }
  for (const [typed, stored] of ROOMS) {
    if (typed === '' || typed.includes('/')) continue // not a single path segment
    const r = await call(gateway, 'GET', `/v1/rooms/${encodeURIComponent(typed)}/messages`, { token })
    t.equal(r.status === 200, stored !== null, `server on room ${JSON.stringify(typed)}: ${r.status}`)
    if (stored !== null) {
      const sent = await call(gateway, 'POST', `/v1/rooms/${encodeURIComponent(typed)}/messages`, { token, body: { clientId: `c-${stored}`, text: 'x' } })
      t.equal(sent.json.message.room, stored, `the server stores ${JSON.stringify(typed)} as ${stored}`)
    }
  }
  const reg = await call(gateway, 'POST', '/v1/auth/register', { body: { username: 'Mixed_Case', password: 'correct horse battery' } })
  t.same(reg.json, { username: toUsername('Mixed_Case') }, 'register stores what toUsername gives')
})

t.test('profile files take exactly the stored usernames', async (t) => {
  for (const [typed, stored] of USERS) {
    if (stored !== null) t.equal(checkUsername(stored), stored, `profile for ${stored}`)
    if (stored !== typed) t.throws(() => checkUsername(typed), { code: 'MM_ERR_BAD_USERNAME' }, `no profile for ${JSON.stringify(typed)}`)
  }
})

t.test('the HTML patterns accept what the typed check accepts, under the v flag', async (t) => {
  // browsers compile <input pattern> as ^(?:p)$ with the v flag
  const user = new RegExp(`^(?:${USERNAME_HTML_PATTERN})$`, 'v')
  const room = new RegExp(`^(?:${ROOM_HTML_PATTERN})$`, 'v')
  for (const [typed, stored] of USERS) t.equal(user.test(typed), stored !== null, `username input ${JSON.stringify(typed)}`)
  for (const [typed, stored] of ROOMS) t.equal(room.test(typed), stored !== null, `room input ${JSON.stringify(typed)}`)
})
