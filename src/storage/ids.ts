// Message ids: 21 base36 characters that sort in creation order within a process
// and roughly (to the clock skew between hosts) across processes:
// 11 chars of ms time, 4 chars of a per-process counter within that ms, 6 random.
// Ids are cursors, not secrets: the random part only keeps processes from colliding.

import { randomInt } from '../onion/crypto/random.js'

const TIME_LEN = 11
const COUNTER_LEN = 4
const RANDOM_LEN = 6
const COUNTER_MAX = 36 ** COUNTER_LEN
const RANDOM_MAX = 36 ** RANDOM_LEN

let lastMs = 0
let counter = 0

/** A new id for a message stored at `now` (ms since epoch). Never goes backwards in one process, even if the clock does. */
export function messageId (now: number): string {
  let ms = Math.max(Math.floor(now), lastMs)
  if (ms === lastMs) {
    counter++
    if (counter >= COUNTER_MAX) { ms++; counter = 0 }
  } else {
    counter = 0
  }
  lastMs = ms
  return ms.toString(36).padStart(TIME_LEN, '0') +
    counter.toString(36).padStart(COUNTER_LEN, '0') +
    randomInt(RANDOM_MAX).toString(36).padStart(RANDOM_LEN, '0')
}

export const MESSAGE_ID_LENGTH = TIME_LEN + COUNTER_LEN + RANDOM_LEN

/** The smallest id a message stored at or after `now` can have: a cursor for "from now on". */
export function idFloor (now: number): string {
  return Math.floor(now).toString(36).padStart(TIME_LEN, '0')
}
