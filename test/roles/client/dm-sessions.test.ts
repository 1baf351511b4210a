// Client DMs on PQXDH + Double Ratchet sessions against the real server code in process (the
// gateway and services, SQLite and nedb in a temp dir; the onion replaced by a direct call
// that records which circuit and token each request came with): DMs both ways, decrypted
// once; a contact's bundle claimed once, at first contact, on a circuit of its own without
// a token, and nothing looked up when reading; a DM replayed by the server under a new id
// refused, also after a restart; safety numbers alike on both sides and a verified mark.
import t from 'tap'
import { MarshmelloError } from '../../../src/errors.js'
import { ChatClient, type ChatMessage } from '../../../src/roles/client/chat-client.js'
import type { CircuitManager } from '../../../src/roles/client/circuit-manager.js'
import type { ApiRequest, ApiResponse } from '../../../src/onion/streams/envelope.js'
import { tmp } from '../../helpers/net.js'
import { clockedStack } from '../server/api/helpers.js'
import { unlockProfile } from '../../../src/roles/client/profile/identity.js'
import { loadDmState, saveDmState } from '../../../src/roles/client/profile/dm-state.js'
import { readSealedState, writeSealedState } from '../../../src/roles/client/sealed-sender.js'

interface Seen { circuit: string, method: string, path: string, token: boolean }

t.test('DM sessions end to end over the real server code', async t => {
  const { gateway, messages, rootFingerprint } = await clockedStack(t)
  const seen: Seen[] = []
  let isolated = 0
  let cutAnonymous = false
  const circuits = (who: string) => {
    const send = async (circuit: string, req: ApiRequest): Promise<ApiResponse> => {
      seen.push({ circuit, method: req.method, path: req.path, token: req.headers.authorization !== undefined })
      const r = await gateway({ method: req.method, url: req.path, circuit, authorization: req.headers.authorization, contentType: req.headers['content-type'], body: req.body.length ? req.body : undefined })
      return { status: r.status, headers: {}, body: r.body }
    }
    return {
      directoryKey: rootFingerprint, // the pinned root the server's sender certificates chain to
      request: (req: ApiRequest) => send(`main-${who}`, req),
      requestIsolated: (req: ApiRequest) => send(`isolated-${isolated++}`, req),
      requestAnonymous: async (req: ApiRequest) => {
        if (cutAnonymous) throw new MarshmelloError('MM_ERR_CIRCUIT_BUILD', 'the anonymous circuit is gone (test)')
        return await send(`anonymous-${who}`, req)
      },
    } as unknown as CircuitManager
  }
  const homeB = tmp('mm-dms-bob-')
  const homeA = tmp('mm-dms-alice-')
  const alice = new ChatClient(homeA, circuits('alice'))
  let bob = new ChatClient(homeB, circuits('bob'))
  await alice.register('alice', 'alice-password')
  await bob.register('bob', 'bob-password')
  await alice.login('alice', 'alice-password')
  await bob.login('bob', 'bob-password')
  const texts = (ms: ChatMessage[]) => ms.map(m => [m.from, m.text, m.verified])

  const from = seen.length
  for (const text of ['one', 'two', 'three']) await alice.sendDm('bob', text)
  // what the server stores for alice's first DM, byte for byte (taken now: bob's read acknowledges, and the server then deletes it)
  const firstStored = (await messages.list({ dmUser: 'bob', limit: 10 }))[0]
  t.same(texts((await bob.readDms()).messages), [['alice', 'one', true], ['alice', 'two', true], ['alice', 'three', true]], 'bob reads all three')
  await bob.sendDm('alice', 'back to you')
  t.same(texts((await alice.readDms()).messages), [['alice', 'one', true], ['alice', 'two', true], ['alice', 'three', true], ['bob', 'back to you', true]], 'alice reads her own (from her history) and bob\'s reply')
  const lookups = seen.slice(from).filter(s => /^\/v1\/users\//.test(s.path))
  t.same(lookups.map(s => `${s.method} ${s.path}`), ['POST /v1/users/bob/prekeys/claim'], 'one bundle claimed, at first contact; none to read, none for bob to answer')
  t.notOk(lookups[0].token, 'the claim carries no token')
  t.match(lookups[0].circuit, /^isolated-/, 'on a circuit of its own')
  t.equal(seen.filter(s => s.circuit === lookups[0].circuit).length, 1, 'that circuit carries nothing else')

  // the server replays alice's first DM under a new id (what it stores, byte for byte)
  const stored = firstStored
  await messages.put({ from: stored.from, to: stored.to, clientId: 'replayed-by-server', body: stored.body, sentAt: stored.sentAt })
  const withReplay = (await bob.readDms()).messages
  t.same(texts(withReplay.slice(0, 4)), [['alice', 'one', true], ['alice', 'two', true], ['alice', 'three', true], ['bob', 'back to you', true]], 'the first read, again (local history)')
  t.same([withReplay[4].text, withReplay[4].verified], [null, false], 'the replay is not shown')
  t.match(withReplay[4].warning, /replay/)

  // a restart: a new client on bob's profile
  await bob.logout()
  bob = new ChatClient(homeB, circuits('bob'))
  await bob.login('bob', 'bob-password')
  const after = (await bob.readDms()).messages
  t.same(after.map(m => [m.text, m.verified]), withReplay.map(m => [m.text, m.verified]), 'after a restart: the same, the replay still refused, nothing shown twice')
  t.equal(after.filter(m => m.text === 'one').length, 1)

  // safety numbers (PROTOCOL §11.4), in whois and on every DM; a verified mark
  const wa = await alice.whois('bob')
  const wb = await bob.whois('alice')
  t.match(wa.safetyNumber, /^([0-9]{5} ){11}[0-9]{5}$/)
  t.equal(wa.safetyNumber, wb.safetyNumber, 'the same number on both sides')
  t.notOk(wa.verified)
  t.ok((await alice.verify('bob')).verified)
  t.ok((await alice.whois('bob')).verified, 'the mark is kept')
  const dm = (await alice.readDms()).messages.at(-1)!
  t.same([dm.safetyNumber, dm.contactVerified], [wa.safetyNumber.replace(/ /g, ''), true], 'a DM carries the pair\'s safety number and the mark (read --json)')
  t.notOk(seen.some(s => s.path.includes('/keys') && s.token && !s.path.includes('/me/')), 'no contact key lookup ever carried a token')

  // a profile from before the one history kept its DM log in sealed.json (and a copy in
  // dm-state.json nobody read): at the next login it is moved over, and nothing is lost
  await alice.logout()
  const idA = await unlockProfile(homeA, 'alice', 'alice-password')
  const state = await loadDmState(homeA, 'alice', idA)
  const history = state.data.history
  t.same(history.map((h) => h.text), ['one', 'two', 'three', 'back to you'], 'one history, in the ratchet\'s file: what alice sent and read')
  await saveDmState(homeA, 'alice', idA, { ...state.data, history: [] })
  await writeSealedState(homeA, 'alice', idA, { ...await readSealedState(homeA, 'alice', idA), log: history })
  const again = new ChatClient(homeA, circuits('alice'))
  await again.login('alice', 'alice-password')
  t.same(texts((await again.readDms()).messages).slice(0, 4), [['alice', 'one', true], ['alice', 'two', true], ['alice', 'three', true], ['bob', 'back to you', true]], 'the earlier log is read after the upgrade')
  t.same((await loadDmState(homeA, 'alice', idA)).data.history.map((h) => h.text).slice(0, 4), ['one', 'two', 'three', 'back to you'], 'now in dm-state.json')
  t.notOk('log' in (await readSealedState(homeA, 'alice', idA))!, 'and no longer in sealed.json')

  // a DM is in the history, as pending, in the same write as its ratchet step: a send that
  // never got the server's answer (the circuit went, then the program stopped) is not lost
  const before = (await again.readDms({ latest: true })).messages.at(-1)!.id
  cutAnonymous = true
  await t.rejects(again.sendDm('bob', 'lost on the way'), { code: 'MM_ERR_CIRCUIT_BUILD' })
  cutAnonymous = false
  t.notOk((await again.readDms({ latest: true })).messages.some((m) => m.text === 'lost on the way'), 'while this run may still retry it, reads do not show it twice')
  // one signed-in client per profile: a second would overwrite this one's ratchet state
  await t.rejects(new ChatClient(homeA, circuits('alice')).login('alice', 'alice-password'), { code: 'MM_ERR_PROFILE_BUSY' }, 'a second login on the profile is refused')
  await again.logout()
  const third = new ChatClient(homeA, circuits('alice'))
  await third.login('alice', 'alice-password')
  const lost = (await third.readDms({ latest: true })).messages.find((m) => m.text === 'lost on the way')
  t.match(lost?.warning, /stopped before the server confirmed it/, 'after a restart: shown, marked unconfirmed')
  t.notOk((await third.readDms({ after: before })).messages.some((m) => m.text === 'lost on the way'), 'never as news in a forward read')
  const sent = await third.sendDm('bob', 'confirmed')
  await third.flush()
  const entry = (await loadDmState(homeA, 'alice', idA)).data.history.find((h) => h.text === 'confirmed')
  t.same([entry?.id, entry?.pending], [sent.id, undefined], 'a confirmed send is written under its server id')
  await third.logout()

  // signed-prekey rotation (PQXDH §3.2): a week-old signed prekey and last-resort prekey are
  // replaced at login; a first message made with the previous ones still opens
  const homeD = tmp('mm-dms-dave-')
  let dave = new ChatClient(homeD, circuits('dave'))
  await dave.register('dave', 'dave-password')
  await dave.login('dave', 'dave-password')
  const idD = await unlockProfile(homeD, 'dave', 'dave-password')
  const published = async () => (await dave.call('GET', '/v1/users/me/prekeys')).data as { signedPrekeyId: number, lastResortId: number }
  const first = await published()
  await dave.logout()
  dave = new ChatClient(homeD, circuits('dave'))
  await dave.login('dave', 'dave-password')
  t.same(await published(), first, 'a fresh signed prekey is kept at the next login')
  const carol = new ChatClient(tmp('mm-dms-carol-'), circuits('carol'))
  await carol.register('carol', 'carol-password')
  await carol.login('carol', 'carol-password')
  await carol.sendDm('dave', 'made with the old signed prekey')
  await dave.logout()
  const daveState = await loadDmState(homeD, 'dave', idD)
  daveState.data.prekeys.signed!.at = Date.now() - 8 * 86_400_000
  await saveDmState(homeD, 'dave', idD, daveState.data)
  dave = new ChatClient(homeD, circuits('dave'))
  await dave.login('dave', 'dave-password')
  const rotated = await published()
  t.ok(rotated.signedPrekeyId !== first.signedPrekeyId && rotated.lastResortId !== first.lastResortId, 'a week-old signed prekey (and the last-resort one) is replaced at login')
  t.same(texts((await dave.readDms()).messages), [['carol', 'made with the old signed prekey', true]], 'a first message made with the previous one still opens')
  const kept = (await loadDmState(homeD, 'dave', idD)).data.prekeys
  t.same([kept.previousSigned?.id, kept.previousLastResort?.id], [first.signedPrekeyId, first.lastResortId], 'the previous ones are kept until the next change, no longer')
  await dave.logout()
  await carol.logout()
})
