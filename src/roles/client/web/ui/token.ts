// The per-run access token: `marshmello chat --web` prints the page's URL with it in
// the fragment (#token=…), which the browser never sends to a server. It is taken
// from the fragment (which is then cleared from the address bar) and kept in this
// tab's sessionStorage, so a reload of the tab keeps the session while another tab
// or a later browser start needs the printed link again. A link pasted into the tab
// later only changes the fragment: `onNewToken` hears it (hashchange).
// Leaves out where the token is checked (security.ts, on the server).

const FRAGMENT = /(?:^#|&)token=([A-Za-z0-9_-]+)/
const KEY = 'marshmello.token'

function stored (): string | null {
  try { return sessionStorage.getItem(KEY) } catch { return null }
}

function store (token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(KEY)
    else sessionStorage.setItem(KEY, token)
  } catch { /* storage disabled: the token lives in memory only */ }
}

/** the token in the fragment (then remembered for this tab), or null; the fragment is cleared either way */
function fromFragment (): string | null {
  const m = FRAGMENT.exec(location.hash)
  if (location.hash) history.replaceState(null, '', location.pathname + location.search)
  if (m) store(m[1])
  return m ? m[1] : null
}

/** the token for this page: a new one in the fragment, else the one this tab kept */
export function takeToken (): string | null {
  return fromFragment() ?? stored()
}

/** forgets the tab's token (the UI refused it: a later run of `chat --web` made a new one) */
export function forgetToken (): void {
  store(null)
}

/** calls `onNewToken` whenever a link with a token is opened in this tab again */
export function watchToken (onNewToken: (token: string) => void): void {
  window.addEventListener('hashchange', () => {
    const t = fromFragment()
    if (t !== null) onNewToken(t)
  })
}
