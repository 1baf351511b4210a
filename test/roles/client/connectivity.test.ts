// Connectivity (src/roles/client/connectivity.ts): one change reported per outage and
// per recovery however many requests fail, a late answer to a request started before
// the failure does not declare the network back, and only errors thrown for lack of an
// answer count as network errors.
import t from 'tap'
import { Connectivity } from '../../../src/roles/client/connectivity.js'

t.test('one line per change, never one per failure', async (t) => {
  const c = new Connectivity()
  const seen: boolean[] = []
  c.onChange((online) => seen.push(online))
  const old = c.begin()
  for (let i = 0; i < 62; i++) c.failed(c.begin(), new Error('could not get a valid consensus'))
  t.same(seen, [false], '62 failures: one "offline"')
  c.ok(old)
  t.same(seen, [false], 'an answer to a request older than the failure is no proof')
  c.ok(c.begin())
  c.ok(c.begin())
  t.same(seen, [false, true], 'then one "reconnected"')
  t.ok(c.online)
})

t.test('network errors are the ones recorded as failures', async (t) => {
  const c = new Connectivity()
  const net = new Error('timeout')
  c.failed(c.begin(), net)
  t.ok(c.isNetworkError(net))
  t.notOk(c.isNetworkError(new Error('refused')))
  t.notOk(c.isNetworkError(undefined))
})
