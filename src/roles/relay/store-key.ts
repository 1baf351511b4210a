// How a relay names a circuit in its session store (docs/PROTOCOL.md §5.3): stable
// names, so several relay processes sharing one store (Redis) serve the same circuits.
// Seen from the previous hop `<ip>:<circId>` (its hop record), from the next hop
// `b:<next fingerprint hex>:<next circId>` (a back pointer holding the first name).
// The relay's local routing tables use the same names.

/**
 * The one constructor of store keys: `peer` is the previous hop's channel address
 * (`host:port`, its port dropped here) or the next hop's fingerprint (hex).
 */
export function circuitKey (side: 'prev' | 'next', peer: string, circId: number): string {
  return side === 'prev' ? `${peerIp(peer)}:${circId}` : `b:${peer}:${circId}`
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1` */
export function peerIp (remote: string): string {
  return remote.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
}

/** the circuit id at the end of a key (IPv6 addresses contain ':') */
export const circIdOf = (key: string): number => Number(key.slice(key.lastIndexOf(':') + 1))

/** the next hop's fingerprint (hex) in a `b:` key */
export const nextFingerprintOf = (nextKey: string): string => nextKey.slice(2, nextKey.indexOf(':', 2))
