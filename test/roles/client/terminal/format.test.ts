// Times and the status line of the terminal chat (terminal/format.ts, status.ts): local
// times, the date for an older day, the UTC offset where the wall clock is ambiguous
// (the hour a DST change repeats), full local date-times with offset for `read`; a
// prompt that is the status line with unread counts, offline and the outbox.
import t from 'tap'
process.env.TZ = 'Europe/Berlin'
const { chatTime, fullTime, utcOffset, zoneDescription } = await import('../../../../src/roles/client/terminal/format.js')
const { statusPrompt } = await import('../../../../src/roles/client/terminal/status.js')

t.test('local times, with the zone where ambiguous', async (t) => {
  const now = Date.UTC(2026, 0, 15, 12, 0, 0) // 13:00 in Berlin (UTC+01:00)
  t.equal(chatTime(Date.UTC(2026, 0, 15, 7, 10, 1), now), '08:10:01', 'today: the local clock time, no date')
  t.equal(chatTime(Date.UTC(2026, 0, 14, 7, 10, 1), now), '2026-01-14 08:10:01', 'another day: the date too')
  t.equal(utcOffset(new Date(now)), '+01:00')
  t.match(zoneDescription(now), /Europe\/Berlin, UTC\+01:00/)
  // 2026-10-25: 02:30 happens twice in Berlin (CEST, then CET)
  const first = Date.UTC(2026, 9, 25, 0, 30) // 02:30 +02:00
  const second = Date.UTC(2026, 9, 25, 1, 30) // 02:30 +01:00
  const later = Date.UTC(2026, 9, 25, 10, 0)
  t.equal(chatTime(first, later), '02:30:00 +02:00', 'the first 02:30 names its offset')
  t.equal(chatTime(second, later), '02:30:00', 'the second is in the current offset')
  t.not(chatTime(first, later), chatTime(second, later), 'the two are told apart')
  t.equal(fullTime(first), '2026-10-25 02:30:00+02:00', 'read: full local date-time with offset')
  t.equal(fullTime(second), '2026-10-25 02:30:00+01:00')
})

t.test('the status line', async (t) => {
  const base = { unreadRooms: new Map<string, number>(), unreadDms: new Map<string, number>(), online: true, outbox: [] }
  t.equal(statusPrompt({ ...base, view: { room: 'lobby' } }), '[#lobby] > ', 'quiet: only where you are')
  t.equal(statusPrompt({ ...base, view: { dm: 'bob' } }), '[@bob] > ')
  t.equal(statusPrompt({
    view: { room: 'lobby' },
    unreadRooms: new Map([['dev', 2], ['lobby', 5], ['empty', 0]]),
    unreadDms: new Map([['bob', 1], ['carol', 250]]),
    online: false,
    outbox: [{ state: 'queued' }, { state: 'sending' }, { state: 'failed' }],
  }), '[#lobby] (#dev 2 · @bob 1 · @carol 199+ · offline · 2 to send · 1 not sent: /retry) > ', 'unread per room and DM (not here), offline, the outbox')
})
