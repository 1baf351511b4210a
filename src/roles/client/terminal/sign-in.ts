// Log in or sign up at the terminal's prompts (issue 17): a wrong password asks again
// (3 tries); sign-up asks for the password twice, explains a rule it breaks in plain
// words and asks again, and writes the profile only once the server accepted the
// account; a name without a profile on this computer is never given new keys silently:
// the user is told how to move the profile here, or confirms the replacement knowing
// what contacts will see. A password from MARSHMELLO_PASSWORD or stdin gets one try.
import { MarshmelloError, isMarshmelloError } from '../../../errors.js'
import { PASSWORD_RULE, passwordProblem } from '../../../limits.js'
import { USERNAME_RULE, toUsername } from '../../../names.js'
import { checkNewAccount, type ChatClient } from '../chat-client.js'
import { profileExists } from '../profile/identity.js'

export const PASSWORD_TRIES = 3

export interface SignInIo {
  say (...lines: string[]): void
  ask (question: string): Promise<string>
  /** a password typed without echo */
  hidden (question: string): Promise<string>
  /** a password given without a terminal (MARSHMELLO_PASSWORD, --password-stdin), else null */
  givenPassword (): Promise<string | null>
}

const cancelled = (why: string) => new MarshmelloError('MM_ERR_CANCELLED', why)
const isCode = (err: unknown, ...codes: string[]) => isMarshmelloError(err) && codes.includes(err.code)
const WRONG = ['MM_ERR_BAD_PASSWORD', 'MM_ERR_BAD_CREDENTIALS']

/** what contacts see when the keys are replaced, said before the user confirms */
export const REPLACE_WARNING = (name: string) => [
  `Replacing ${name}'s keys makes new end-to-end keys for this computer. Every contact will see`,
  `"${name}'s key changed" and must verify you again (/whois, /trust); DMs sealed to the old keys`,
  'cannot be read here, and the computer with the old profile can no longer send verified DMs.',
]

export async function signIn (client: ChatClient, io: SignInIo, home: string | undefined, typedUser?: string): Promise<string> {
  let user = await askUsername(io, typedUser)
  if (await profileExists(home, user)) {
    await withPasswordTries(io, 'password: ', (pw) => loginOrReplace(client, io, user, pw))
    return user
  }
  io.say(`no profile for ${user} on this computer.`,
    `  If ${user} is your account on another computer, move its profile here instead: there run`,
    `  marshmello profile export --user ${user} --out FILE, then here marshmello profile import FILE.`)
  const choice = (await io.ask(`[s]ign up as ${user}, [r]eplace the keys of your existing account ${user}, or [q]uit? `)).toLowerCase()
  if (choice.startsWith('r')) {
    await confirmReplace(io, user)
    await withPasswordTries(io, `password of the account ${user}: `, (pw) => client.login(user, pw, { replaceKeys: true }))
    io.say(`new keys for ${user} are in place; contacts will see that your key changed`)
    return user
  }
  if (!choice.startsWith('s')) throw cancelled('not signed up; run again to log in (--home DIR picks another profile home)')
  const scripted = (await io.givenPassword()) !== null // no prompts to ask again with
  for (;;) {
    const pw = await choosePassword(io)
    try {
      checkNewAccount(user, pw)
      await client.register(user, pw)
      await client.login(user, pw)
      io.say(`signed up as ${user}`)
      return user
    } catch (err) {
      if (scripted) throw err
      if (isCode(err, 'MM_ERR_USER_EXISTS')) {
        io.say(`! the name ${user} is taken. If it is yours, import your profile (marshmello profile import FILE) or answer [r] next time.`)
        user = await askUsername(io, undefined, 'choose another username (empty to quit): ')
        continue
      }
      if (isCode(err, 'MM_ERR_VALIDATION', 'MM_ERR_PASSWORD', 'MM_ERR_BAD_USERNAME')) {
        io.say(`! the server refused: ${(err as Error).message}. ${USERNAME_RULE}; ${PASSWORD_RULE}.`)
        continue
      }
      throw err
    }
  }
}

async function askUsername (io: SignInIo, typed?: string, question = 'username: '): Promise<string> {
  for (let i = 0; i < PASSWORD_TRIES; i++) {
    const raw = typed ?? await io.ask(question)
    typed = undefined
    if (raw === '') throw cancelled('no username given')
    const name = toUsername(raw)
    if (name !== null) return name
    io.say(`! ${USERNAME_RULE}; try again`)
  }
  throw cancelled(`no valid username after ${PASSWORD_TRIES} tries`)
}

/** runs `step` with a password, asking again on a wrong one (3 tries; one try for a given password) */
async function withPasswordTries (io: SignInIo, question: string, step: (pw: string) => Promise<void>): Promise<void> {
  const given = await io.givenPassword()
  for (let i = 1; ; i++) {
    const pw = given ?? await io.hidden(question)
    try {
      await step(pw)
      return
    } catch (err) {
      if (!isCode(err, ...WRONG) || given !== null) throw err
      if (i >= PASSWORD_TRIES) throw new MarshmelloError((err as MarshmelloError).code, `wrong password ${PASSWORD_TRIES} times; run again to retry`)
      io.say(`! wrong password; try again (${PASSWORD_TRIES - i} ${PASSWORD_TRIES - i === 1 ? 'try' : 'tries'} left)`)
    }
  }
}

async function loginOrReplace (client: ChatClient, io: SignInIo, user: string, pw: string): Promise<void> {
  try {
    await client.login(user, pw)
  } catch (err) {
    if (!isCode(err, 'MM_ERR_KEYS_MISMATCH')) throw err
    io.say(`! ${(err as Error).message}`)
    await confirmReplace(io, user)
    await client.login(user, pw, { replaceKeys: true })
    io.say(`this profile's keys replace the other ones for ${user}; contacts will see that your key changed`)
  }
}

async function confirmReplace (io: SignInIo, user: string): Promise<void> {
  io.say(...REPLACE_WARNING(user))
  const yes = await io.ask('type "replace" to replace the keys, anything else to stop: ')
  if (yes !== 'replace') throw cancelled(`the keys of ${user} were not replaced; nothing changed`)
}

/** a new password, typed twice, until it keeps the rule */
async function choosePassword (io: SignInIo): Promise<string> {
  const given = await io.givenPassword()
  if (given !== null) {
    const problem = passwordProblem(given)
    if (problem) throw new MarshmelloError('MM_ERR_PASSWORD', problem)
    return given
  }
  for (;;) {
    const pw = await io.hidden(`choose a password (${PASSWORD_RULE}): `)
    const problem = passwordProblem(pw)
    if (problem) { io.say(`! ${problem}; try again`); continue }
    if (await io.hidden('type it again: ') !== pw) { io.say('! the two passwords differ; try again'); continue }
    return pw
  }
}
