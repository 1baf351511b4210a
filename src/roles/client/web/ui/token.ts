// The per-run access token: `marshmello chat --web` prints the page's URL with it in
// the fragment (#token=…), which the browser never sends to a server. It is read
// once at load, then removed from the address bar and kept in memory only (so a
// reload needs the printed link again). Leaves out where the token is checked
// (security.ts, on the server).

const FRAGMENT = /(?:^#|&)token=([A-Za-z0-9_-]+)/

/** the token in the page's fragment, or null; the fragment is cleared either way */
export function takeTokenFromFragment (): string | null {
  const m = FRAGMENT.exec(location.hash)
  if (location.hash) history.replaceState(null, '', location.pathname + location.search)
  return m ? m[1] : null
}
