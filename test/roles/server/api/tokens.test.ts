import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { TokenService, loadOrCreateSecret } from '../../../../src/roles/server/api/tokens.js'
import { tempDir } from './helpers.js'

const revokedNone = async () => false

function flip (s: string, i: number): string {
  const c = s[i] === 'A' ? 'B' : 'A'
  return s.slice(0, i) + c + s.slice(i + 1)
}

t.test('issue then verify', async t => {
  const tokens = new TokenService({ secret: randomBytes(32) }, { isRevoked: revokedNone })
  const before = Date.now()
  const issued = await tokens.issue('alice')
  t.ok(issued.expiresAt >= before + 12 * 3600_000 - 1000 && issued.expiresAt <= Date.now() + 12 * 3600_000 + 1000, 'default 12 h')
  const v = await tokens.verify(issued.token)
  t.same(v, { username: 'alice', jti: issued.jti, exp: issued.expiresAt / 1000, expiresAt: issued.expiresAt })
})

t.test('expiry with a fake clock and with a real 1-second TTL', async t => {
  let clock = Date.now()
  const tokens = new TokenService({ secret: randomBytes(32), ttlMs: 60_000 }, { isRevoked: revokedNone, now: () => clock })
  const { token } = await tokens.issue('alice')
  clock += 59_000
  t.equal((await tokens.verify(token)).username, 'alice')
  clock += 2_000
  await t.rejects(tokens.verify(token), { code: 'MM_ERR_TOKEN_EXPIRED', statusCode: 401 })

  const short = new TokenService({ secret: randomBytes(32), ttlMs: 1000 }, { isRevoked: revokedNone })
  const s = await short.issue('bob')
  await new Promise(resolve => setTimeout(resolve, 2100))
  await t.rejects(short.verify(s.token), { code: 'MM_ERR_TOKEN_EXPIRED' })
})

t.test('tampering, foreign secrets, algorithms and audiences are refused', async t => {
  const secret = randomBytes(32)
  const tokens = new TokenService({ secret }, { isRevoked: revokedNone })
  const { token } = await tokens.issue('alice')
  const [h, p, s] = token.split('.')
  await t.rejects(tokens.verify(`${h}.${p}.${flip(s, 3)}`), { code: 'MM_ERR_TOKEN' }, 'signature flipped')
  await t.rejects(tokens.verify(`${h}.${flip(p, 10)}.${s}`), { code: 'MM_ERR_TOKEN' }, 'payload flipped')
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'mallory' })).toString('base64url')
  await t.rejects(tokens.verify(`${h}.${forged}.${s}`), { code: 'MM_ERR_TOKEN' }, 'subject swapped')
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
  await t.rejects(tokens.verify(`${none}.${p}.`), { code: 'MM_ERR_TOKEN' }, 'alg none')
  const other = new TokenService({ secret: randomBytes(32) }, { isRevoked: revokedNone })
  await t.rejects(other.verify(token), { code: 'MM_ERR_TOKEN' }, 'another secret')
  const wrongAud = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setJti('x')
    .setIssuer('marshmello').setAudience('elsewhere').setIssuedAt().setExpirationTime('1h').sign(secret)
  await t.rejects(tokens.verify(wrongAud), { code: 'MM_ERR_TOKEN' }, 'audience')
  const noJti = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice')
    .setIssuer('marshmello').setAudience('marshmello-api').setIssuedAt().setExpirationTime('1h').sign(secret)
  await t.rejects(tokens.verify(noJti), { code: 'MM_ERR_TOKEN' }, 'no jti')
  for (const junk of ['', 'a.b.c', 'x'.repeat(5000), '\u0000.\u0000.\u0000']) {
    await t.rejects(tokens.verify(junk), { code: 'MM_ERR_TOKEN' }, JSON.stringify(junk.slice(0, 10)))
  }
})

t.test('revocation goes through isRevoked', async t => {
  const revoked = new Set<string>()
  const tokens = new TokenService({ secret: randomBytes(32) }, { isRevoked: async jti => revoked.has(jti) })
  const a = await tokens.issue('alice')
  const b = await tokens.issue('alice')
  t.not(a.jti, b.jti)
  revoked.add(a.jti)
  await t.rejects(tokens.verify(a.token), { code: 'MM_ERR_TOKEN' })
  t.equal((await tokens.verify(b.token)).jti, b.jti)
  const broken = new TokenService({ secret: randomBytes(32) }, { isRevoked: async () => { throw new Error('down') } })
  await t.rejects(broken.verify((await broken.issue('alice')).token), { code: 'MM_ERR_REVOCATION_UNAVAILABLE', statusCode: 503 })
})

t.test('configuration is checked', async t => {
  t.throws(() => new TokenService({ secret: randomBytes(31) }, { isRevoked: revokedNone }), { code: 'MM_ERR_CONFIG' })
  const tokens = new TokenService({ secret: randomBytes(32) }, { isRevoked: revokedNone })
  await t.rejects(tokens.issue('Not A Name'), { code: 'MM_ERR_VALIDATION' })
})

t.test('loadOrCreateSecret writes 0600 once and reuses it', async t => {
  const dir = await tempDir(t)
  const path = join(dir, 'nested', 'token.secret')
  const first = await loadOrCreateSecret(path)
  t.equal(first.length, 32)
  t.equal((await stat(path)).mode & 0o777, 0o600)
  const again = await loadOrCreateSecret(path)
  t.same(Buffer.from(again), Buffer.from(first), 'same secret after a restart')
  t.same(await readFile(path), Buffer.from(first))
  const tokens = new TokenService({ secret: first }, { isRevoked: revokedNone })
  const restarted = new TokenService({ secret: again }, { isRevoked: revokedNone })
  t.equal((await restarted.verify((await tokens.issue('alice')).token)).username, 'alice', 'tokens survive a restart')
  const short = join(dir, 'short.secret')
  await writeFile(short, randomBytes(8))
  await t.rejects(loadOrCreateSecret(short), { code: 'MM_ERR_CONFIG' })
})
