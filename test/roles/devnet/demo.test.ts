// `marshmello devnet --demo`: the output names every hop of one message's circuit,
// shows the cell size each relay saw, and that the plaintext was in none of the
// cells any relay received; the DM is verified and stored as ciphertext only.
import t from 'tap'
import { run, tmp } from '../../helpers/net.js'

t.test('devnet --demo shows what each hop saw', async (t) => {
  const dir = tmp('mm-demo-')
  const base = 24000 + (process.pid % 5000) * 2
  const p = run(['devnet', '--authorities', '1', '--relays', '3', '--dir', dir, '--port-base', String(base), '--json', '--demo', '--stats-interval', '0'])
  t.teardown(() => p.kill())
  await p.waitFor(/"demo: done/, 90_000)
  const lines = p.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === 'demo').map((e) => e.line as string)
  const hops = lines.filter((l) => /^ {2}\d\. /.test(l))
  t.equal(hops.length, 4, 'three relays and the server')
  t.match(hops[0], /before: alice \(a client/, 'the entry relay sees a client it cannot name')
  t.match(hops[3], /the server +from relay\d/, 'the server sees only the exit relay')
  const views = lines.filter((l) => /plaintext in the \d+ cells it received/.test(l))
  t.equal(views.length, 3, 'one view per relay')
  for (const v of views) {
    t.match(v, /size 2048 bytes/, 'every cell is 2048 bytes')
    t.match(v, /not found — it could not read the content/)
  }
  t.notOk(lines.some((l) => /FOUND \(!\)/.test(l)), 'no relay and no store held the plaintext')
  t.ok(lines.some((l) => /bob read it through his own circuit: yes/.test(l)))
  t.ok(lines.some((l) => /decrypted it on their PQXDH \+ Double Ratchet session/.test(l)))
  t.equal(await p.kill('SIGTERM'), 0)
})
