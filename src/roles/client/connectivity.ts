// Whether the client can reach the server, as its requests show it: a request that
// gets any answer (even a refusal) proves the network works, one that fails to get an
// answer (no consensus, no circuit, a timeout) means offline. Only a request started
// after the last failure can declare the network back, so a slow old request does not
// flap the state; listeners hear each change once ("offline — reconnecting", then
// "reconnected"), never once per failed request. Pure; leaves out retries and display.

export type ConnectivityListener = (online: boolean, cause?: unknown) => void

export class Connectivity {
  private seq = 0
  private lastFailure = 0
  private state = true
  private readonly listeners = new Set<ConnectivityListener>()
  private readonly failures = new WeakSet<object>()

  get online (): boolean { return this.state }

  /** call when a request starts; pass the number to ok() or failed() */
  begin (): number { return ++this.seq }

  ok (n: number): void {
    if (n > this.lastFailure) this.set(true)
  }

  /** the request got no answer: `err` is remembered as a network error */
  failed (n: number, err: unknown): void {
    if (typeof err === 'object' && err !== null) this.failures.add(err)
    this.lastFailure = Math.max(this.lastFailure, n)
    this.set(false, err)
  }

  /** true for an error thrown because no answer came (not a refusal by the server) */
  isNetworkError (err: unknown): boolean {
    return typeof err === 'object' && err !== null && this.failures.has(err)
  }

  /** returns the unsubscribe function */
  onChange (fn: ConnectivityListener): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private set (online: boolean, cause?: unknown): void {
    if (online === this.state) return
    this.state = online
    for (const fn of this.listeners) {
      try { fn(online, cause) } catch { /* a listener's error is its own */ }
    }
  }
}
