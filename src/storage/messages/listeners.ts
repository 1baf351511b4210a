// The onMessage listener set shared by the message stores. A listener that throws
// is isolated from the put that fired it and from the other listeners; its error is
// dropped here because stores have no logger (listeners should catch their own).

import type { StoredMessage } from '../types.js'

export type MessageListener = (m: StoredMessage) => void

export class Listeners {
  private readonly set = new Set<MessageListener>()

  get size (): number { return this.set.size }

  /** returns the unsubscribe function; `onChange` sees the new count */
  add (listener: MessageListener, onChange?: (count: number) => void): () => void {
    // wrap so the same function may subscribe twice and unsubscribe once
    const entry: MessageListener = (m) => listener(m)
    this.set.add(entry)
    onChange?.(this.set.size)
    return () => {
      if (this.set.delete(entry)) onChange?.(this.set.size)
    }
  }

  emit (m: StoredMessage): void {
    for (const l of [...this.set]) {
      try { l({ ...m }) } catch { /* a listener's own failure */ }
    }
  }

  clear (): void { this.set.clear() }
}
