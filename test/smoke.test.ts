import t from 'tap'
import { MarshmelloError } from '../src/errors.js'
t.test('error has code', async t => {
  const e = new MarshmelloError('MM_ERR_X', 'bad-input', 'x')
  t.equal(e.statusCode, 400)
})
