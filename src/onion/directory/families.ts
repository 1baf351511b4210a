// Which relays may not share a path (docs/PROTOCOL.md §7.4, Tor path-spec §2.2): two
// relays are related when they are the same identity, declare each other as family
// (both descriptors name the other, as Tor's MyFamily: a one-sided claim could be
// used to push honest relays off paths), or sit in the same IPv4 /16 or IPv6 /32.
// Addresses are compared parsed (address.ts), never as strings. Also the address
// policy the directory lists relays by: public addresses only outside a private network.
import { MarshmelloError } from '../../errors.js'
import { addressClass, parseIp, subnetKey, type IpAddress } from './address.js'
import type { Descriptor } from './descriptor.js'

/** a descriptor's address, parsed; null when its host is not an IP literal (never on a path) */
export const hopIp = (d: Pick<Descriptor, 'host'>): IpAddress | null => parseIp(d.host)

/** both descriptors name each other in `family` */
export const mutualFamily = (a: Descriptor, b: Descriptor): boolean =>
  (a.family?.includes(b.fingerprint) ?? false) && (b.family?.includes(a.fingerprint) ?? false)

export interface RelatedOptions {
  /** apply the subnet rule (same /16 or /32, which includes the same IP); default true */
  subnets?: boolean
}

/**
 * Whether `a` and `b` must not be on one path: the same identity, a mutual family, or
 * (unless waived) one IPv4 /16 or IPv6 /32. A descriptor without an IP literal is
 * related to everything: it can never be chosen beside another hop.
 */
export function related (a: Descriptor, b: Descriptor, o: RelatedOptions = {}): boolean {
  if (a.fingerprint === b.fingerprint) return true
  if (mutualFamily(a, b)) return true
  if (o.subnets === false) return false
  const x = hopIp(a)
  const y = hopIp(b)
  if (!x || !y) return true
  return x.family === y.family && subnetKey(x) === subnetKey(y)
}

/** every listed address is outside public space: a private test network (a devnet on loopback, namespaces on 10/8) */
export const allPrivate = (ds: readonly Descriptor[]): boolean =>
  ds.length > 0 && ds.every((d) => {
    const ip = hopIp(d)
    return ip !== null && addressClass(ip) !== 'public'
  })

/**
 * Throws MM_ERR_ADDRESS_PRIVATE unless `host` may be listed: a public address, or any
 * address when the directory serves a private test network (`--private-network`).
 */
export function checkListable (host: string, privateNetwork: boolean): IpAddress {
  const ip = parseIp(host)
  if (!ip) throw new MarshmelloError('MM_ERR_DESCRIPTOR', 'descriptor host must be an IP address literal')
  const cls = addressClass(ip)
  if (cls !== 'public' && !privateNetwork) {
    throw new MarshmelloError('MM_ERR_ADDRESS_PRIVATE', `${host} is a ${cls} address: this directory lists public addresses only (a private test network runs its directory with --private-network)`)
  }
  return ip
}
