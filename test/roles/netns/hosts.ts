// The namespace network of real-hosts.test.ts: one network namespace per host, each
// with one veth to a bridge in a namespace of its own, every address in a /16 of its
// own except where the test wants two relays in one /16 (A1, A2) or on one address (B).
// Documentation and benchmarking ranges (RFC 5737, RFC 2544), which the directory and
// path choice treat as public: nothing here is loopback or RFC 1918, so no rule is waived.
// Nothing links these namespaces to the host's: traffic stays among them.

export interface Host { name: string, ip: string }

export const SERVER: Host = { name: 'srv', ip: '203.0.113.10' }
/** where the devnet's own code runs (it polls the directory and relays while starting) */
export const OPS: Host = { name: 'ops', ip: '203.0.113.200' }
export const CLIENT: Host = { name: 'cli', ip: '192.0.2.10' }
export const RELAY_HOSTS: Host[] = [
  { name: 'a1', ip: '198.18.0.11' },
  { name: 'a2', ip: '198.18.0.12' },
  { name: 'b', ip: '198.19.0.11' },
  { name: 'c1', ip: '198.51.100.11' },
  { name: 'c2', ip: '198.51.100.12' },
]
/** the devnet's relays, by host name: two on B's one address (the per-IP limit) */
export const RELAYS = ['a1', 'a2', 'b', 'b', 'c1', 'c2']
/** started once the devnet is ready: a third relay on B's address */
export const EXTRA_RELAY = 'b'

export const ALL_HOSTS: Host[] = [SERVER, OPS, CLIENT, ...RELAY_HOSTS]
export const hostIp = (name: string): string => ALL_HOSTS.find((h) => h.name === name)!.ip
export const slash16 = (ip: string): string => ip.split('.').slice(0, 2).join('.')
