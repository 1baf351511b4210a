// Small typed DOM helpers for the web UI's browser code: finding the page's fixed
// elements by id (checked against their expected class), making elements whose text
// is set only through textContent, and showing or hiding them. Nothing here ever
// parses markup: there is no innerHTML anywhere in the UI.

/** the page's element `#id`, which must be a `type` (an HTMLInputElement, …) */
export function byId<T extends HTMLElement> (id: string, type: { new (): T, prototype: T }): T {
  const e = document.getElementById(id)
  if (!(e instanceof type)) throw new Error(`the page has no ${type.name} #${id}`)
  return e
}

/** a new `<tag class=cls>` holding `text` as a text node (never as markup) */
export function el<K extends keyof HTMLElementTagNameMap> (tag: K, cls?: string, text?: string | number | null): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (cls) e.className = cls
  if (text !== undefined && text !== null) e.textContent = String(text)
  return e
}

export function clear (node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild)
}

export function show (node: HTMLElement, on: boolean): void {
  node.hidden = !on
}

/** a hex fingerprint in groups of four, as people compare them aloud */
export const groups = (hex: string | null | undefined): string => (hex ?? '').replace(/(.{4})/g, '$1 ').trim()

const pad = (n: number): string => String(n).padStart(2, '0')

/**
 * A ms timestamp in local time, as short as is unambiguous: HH:MM today, with the
 * day (and year, when not this one) otherwise. `full` (for a title) names the zone.
 */
export function time (t: number, now = Date.now()): { short: string, full: string, iso: string } {
  const d = new Date(t)
  const n = new Date(now)
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`
  const sameDay = d.toDateString() === n.toDateString()
  const day = d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', ...(d.getFullYear() === n.getFullYear() ? {} : { year: 'numeric' }) })
  const full = d.toLocaleString('en-GB', { dateStyle: 'full', timeStyle: 'long' })
  return { short: sameDay ? hm : `${day} ${hm}`, full, iso: d.toISOString() }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
