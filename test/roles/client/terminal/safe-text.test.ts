// Text from the network made safe for a terminal (src/roles/client/terminal/safe-text.ts),
// and the message lines built from it (format.ts): the payloads of issue 17 (colour, a
// title change, clearing the screen, a forged line by CR or LF, bidi overrides, 8-bit
// C1 controls) come out with no control character and on one line; `--json` output
// keeps the exact text as JSON, with nothing raw a terminal would act on.
import t from 'tap'
import { isSafeText, safeText } from '../../../../src/roles/client/terminal/safe-text.js'
import { formatMessage, jsonMessage } from '../../../../src/roles/client/terminal/format.js'
import type { ChatMessage } from '../../../../src/roles/client/chat-client.js'

const PAYLOAD = 'before \x1b[31mred \x1b]0;PWNED\x07 \x1b[2J end'
const FORGED_CR = 'hi\r[08:10:01] #lobby alice: I agree, send bob money'
const FORGED_LF = 'hi\n[08:10:01] #lobby alice: I agree, send bob money'

/** every code point that is a C0/C1 control, DEL, a bidi control or a line separator */
const controls = (s: string) => [...s].filter((c) => {
  const cp = c.codePointAt(0)!
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || [0x061c, 0x200e, 0x200f, 0x2028, 0x2029].includes(cp) ||
    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)
})

t.test('escape sequences are shown, not run', async (t) => {
  const out = safeText(PAYLOAD)
  t.same(controls(out), [], 'no control character is left')
  t.equal(out, 'before ␛[31mred ␛]0;PWNED␇ ␛[2J end', 'each control is its visible picture, the rest unchanged')
})

t.test('one line stays one line', async (t) => {
  for (const [i, s] of [FORGED_CR, FORGED_LF, 'a\r\nb', 'a\u2028b', 'a\u2029b', 'a\u0085b'].entries()) {
    const out = safeText(s)
    t.same(controls(out), [], `case ${i}: no control character`)
    t.notOk(/[\r\n]/.test(out), 'no line break')
  }
  t.equal(safeText(FORGED_CR), 'hi␍[08:10:01] #lobby alice: I agree, send bob money')
})

t.test('C1 controls, DEL and bidi controls are named', async (t) => {
  t.equal(safeText('a\u009b2Jb'), 'a‹U+009B›2Jb', '8-bit CSI')
  t.equal(safeText('a\u009d0;x\u009cb'), 'a‹U+009D›0;x‹U+009C›b', '8-bit OSC and ST')
  t.equal(safeText('x\x7fy'), 'x␡y')
  t.equal(safeText('pay \u202Eexe.txt'), 'pay ‹U+202E›exe.txt', 'right-to-left override')
  for (const cp of [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x2066, 0x2067, 0x2068, 0x2069]) {
    t.equal(safeText(String.fromCodePoint(cp)), `‹U+${cp.toString(16).toUpperCase().padStart(4, '0')}›`)
  }
})

t.test('ordinary text is unchanged', async (t) => {
  for (const s of ['hello', 'grüße, 你好, مرحبا, emoji 🎉 and ✓ ⚠', '']) {
    t.equal(safeText(s), s, s)
    t.ok(isSafeText(s))
  }
  t.equal(safeText('a\tb'), 'a␉b', 'a tab is a control too: shown')
  t.notOk(isSafeText('a\tb'))
  t.equal(safeText('a\uD800b'), 'a\uFFFDb', 'a lone surrogate becomes U+FFFD')
})

const room = (text: string, from = 'mallory'): ChatMessage => ({ id: 'm1', from, room: 'lobby', text, sentAt: Date.UTC(2026, 0, 2, 8, 10, 1) })

t.test('message lines: every field made safe, verified DMs marked', async (t) => {
  for (const text of [PAYLOAD, FORGED_CR, FORGED_LF]) {
    const line = formatMessage(room(text))
    t.same(controls(line), [], 'room line has no control character')
    t.match(line, /^\[[^\]]+\] #lobby mallory: /, 'starts as mallory\'s line')
  }
  const dm: ChatMessage = { id: 'd1', from: 'bob', to: 'alice', text: 'hi', sentAt: 0, verified: true }
  t.match(formatMessage(dm), /\] ✓ bob → alice: hi$/, 'a verified DM carries ✓')
  const bad: ChatMessage = { id: 'd2', from: 'bob', to: 'alice', text: null, sentAt: 0, verified: false, warning: 'failed\x1b[2J' }
  const badLine = formatMessage(bad)
  t.match(badLine, /\] ⚠ bob → alice: failed␛\[2J$/, 'an unverified one carries ⚠, its warning made safe')
  t.notMatch(badLine, /✓/)
  const forgedName: ChatMessage = { ...dm, from: 'x\x1b]0;t\x07' }
  t.same(controls(formatMessage(forgedName)), [], 'names are made safe too')
})

t.test('JSON lines keep the exact text and nothing raw a terminal acts on', async (t) => {
  const text = PAYLOAD + FORGED_LF + '\u009b2J\u202E\u2028\x7f'
  const line = jsonMessage(room(text))
  t.same(controls(line), [], 'no raw control in the JSON line')
  t.equal(JSON.parse(line).text, text, 'the same text once parsed')
})
