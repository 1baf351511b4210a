// judgeConsensus (src/onion/directory/freshness.ts, PROTOCOL §7.7) as a pure function:
// never back in time past the newest validAfter accepted (held or persisted), and no
// silent collapse: a document dropping more than half of a valid held one's relays is
// kept back until the held one expires.
import t from 'tap'
import type { Consensus } from '../../../src/onion/directory/consensus.js'
import type { Descriptor } from '../../../src/onion/directory/descriptor.js'
import { judgeConsensus, MASS_DROP_MIN_RELAYS } from '../../../src/onion/directory/freshness.js'

const H = 3600_000
const T = 1_800_000_000_000
const relay = (i: number) => ({ fingerprint: i.toString(16).padStart(64, '0') }) as Descriptor
function doc (validAfter: number, relays: number[]): Consensus {
  return { v: 2, method: 1, validAfter, validUntil: validAfter + H, relays: relays.map(relay), server: null, flags: {}, signatures: [] }
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i)

t.test('never back in time', async (t) => {
  const held = doc(T, range(0, 10))
  t.match(judgeConsensus(held, doc(T - 10_000, range(0, 10)), 0, T + 1000), { adopt: false, code: 'MM_ERR_CONSENSUS_OLDER' }, 'older than the held one: refused')
  t.match(judgeConsensus(null, doc(T - 10_000, range(0, 10)), T, T + 1000), { adopt: false, code: 'MM_ERR_CONSENSUS_OLDER' }, 'older than the newest persisted (after a restart, nothing held): refused')
  t.match(judgeConsensus(held, doc(T, range(0, 10)), T, T + 1000), { adopt: true, newestValidAfter: T }, 'the same document again: taken')
  t.match(judgeConsensus(held, doc(T + 10_000, range(0, 10)), T, T + 20_000), { adopt: true, newestValidAfter: T + 10_000, dropped: 0 }, 'a newer one: taken, and the mark moves')
  t.match(judgeConsensus(null, doc(T, range(0, 3)), 0, T), { adopt: true, newestValidAfter: T }, 'the first one ever: taken')
})

t.test('no silent collapse', async (t) => {
  const held = doc(T, range(0, 10))
  const v = judgeConsensus(held, doc(T + 10_000, range(6, 10)), T, T + 20_000)
  t.match(v, { adopt: false, code: 'MM_ERR_CONSENSUS_SHRANK', dropped: 6 }, '6 of 10 relays gone while the held one is valid: kept back')
  t.match((v as { message: string }).message, /drops 6 of the 10 relays.*keeping the previous one/, 'and it says so')
  t.match(judgeConsensus(held, doc(T + 10_000, range(5, 10)), T, T + 20_000), { adopt: true, dropped: 5, warning: undefined }, 'half gone (5 of 10): taken quietly')
  t.match(judgeConsensus(held, doc(T + 10_000, [...range(6, 10), ...range(100, 120)]), T, T + 20_000), { adopt: false, code: 'MM_ERR_CONSENSUS_SHRANK' }, 'replaced by others (6 of 10 gone, 20 new): kept back too')
  const late = judgeConsensus(held, doc(T + H + 10_000, range(6, 10)), T, T + H + 20_000)
  t.match(late, { adopt: true, dropped: 6 }, 'once the held one has expired, the shrunken one is taken')
  t.match((late as { warning?: string }).warning, /previous one has expired/, 'with a warning')
  const small = doc(T, range(0, MASS_DROP_MIN_RELAYS - 1))
  t.match(judgeConsensus(small, doc(T + 10_000, []), T, T + 20_000), { adopt: true }, `a network under ${MASS_DROP_MIN_RELAYS} relays is not judged by halves`)
})
