// Text from the network made safe for a terminal (issue 17): a message, a name or an
// error that quotes a peer may hold control characters that drive the terminal (ESC
// sequences clear the screen or set its title, CR and LF forge a line that seems to
// come from someone else, bidi overrides reorder what is shown). Every C0 and C1
// control, DEL, the line and paragraph separators and the bidi controls are shown
// visibly instead (ESC as ␛, LF as ␊, U+202E as ‹U+202E›), so one line stays one line
// and nothing reaches the terminal as a command. Pure; leaves out layout and colour.

/** U+2400…U+241F are the control pictures of U+0000…U+001F; U+2421 is DEL's */
const C0_PICTURES = 0x2400
const DEL_PICTURE = 0x2421

/** code points shown as ‹U+XXXX›: C1 controls, bidi marks, embeddings, overrides and isolates, separators */
function isShownAsCode (cp: number): boolean {
  return (cp >= 0x80 && cp <= 0x9f) || // C1 (CSI 0x9B, OSC 0x9D … in 8-bit terminals)
    cp === 0x061c || cp === 0x200e || cp === 0x200f || // ALM, LRM, RLM
    (cp >= 0x202a && cp <= 0x202e) || // LRE RLE PDF LRO RLO
    (cp >= 0x2066 && cp <= 0x2069) || // LRI RLI FSI PDI
    cp === 0x2028 || cp === 0x2029 // line and paragraph separators
}

/** `text` with every terminal control shown visibly; the result holds no control character */
export function safeText (text: string): string {
  let out = ''
  let plainFrom = 0
  let i = 0
  while (i < text.length) {
    const cp = text.codePointAt(i)!
    const width = cp > 0xffff ? 2 : 1
    let shown: string | null = null
    if (cp < 0x20) shown = String.fromCharCode(C0_PICTURES + cp)
    else if (cp === 0x7f) shown = String.fromCharCode(DEL_PICTURE)
    else if (isShownAsCode(cp)) shown = `‹U+${cp.toString(16).toUpperCase().padStart(4, '0')}›`
    else if (cp >= 0xd800 && cp <= 0xdfff) shown = '\ufffd' // a lone surrogate (the server refuses them; a peer's name never has one)
    if (shown !== null) {
      out += text.slice(plainFrom, i) + shown
      plainFrom = i + width
    }
    i += width
  }
  return plainFrom === 0 ? text : out + text.slice(plainFrom)
}

/** true when `text` would reach a terminal unchanged */
export function isSafeText (text: string): boolean {
  return safeText(text) === text
}
