// IP address literals as the directory and path selection compare them (docs/PROTOCOL.md
// §7.1, §7.4): a strict parser for dotted-quad IPv4 and RFC 4291 IPv6 text (no zone id,
// no hostnames, nothing resolved), IPv4-mapped IPv6 (::ffff:a.b.c.d) folded to IPv4, the
// canonical text of each (RFC 5952 for IPv6), the address class (public or not), and the
// keys path selection groups by: the address itself and its IPv4 /16 or IPv6 /32
// (Tor's path-spec §2.2 "EnforceDistinctSubnets"). Pure: no node:net, no DNS.

export interface IpAddress {
  family: 4 | 6
  /** 4 or 16 bytes, network order */
  bytes: Uint8Array
}

const DEC_OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/

function parseV4 (s: string): Uint8Array | null {
  const parts = s.split('.')
  if (parts.length !== 4) return null
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    if (!DEC_OCTET.test(parts[i])) return null // no leading zeros (octal ambiguity), no empty part
    out[i] = Number(parts[i])
  }
  return out
}

function parseV6 (s: string): Uint8Array | null {
  if (s.length < 2 || s.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(s)) return null
  const halves = s.split('::')
  if (halves.length > 2) return null
  const groups = (h: string): string[] | null => (h === '' ? [] : h.split(':'))
  const head = groups(halves[0])
  const tail = halves.length === 2 ? groups(halves[1]) : []
  if (!head || !tail) return null
  const words: number[] = []
  const all = [...head, ...tail]
  const last = all.at(-1)
  let v4: Uint8Array | null = null
  if (last !== undefined && last.includes('.')) {
    v4 = parseV4(last)
    if (!v4) return null
    if (tail.length > 0) tail.pop()
    else head.pop()
  }
  const toWords = (gs: string[]): number[] | null => {
    const w: number[] = []
    for (const g of gs) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null
      w.push(parseInt(g, 16))
    }
    return w
  }
  const hw = toWords(head)
  const tw = toWords(tail)
  if (!hw || !tw) return null
  const need = 8 - (v4 ? 2 : 0)
  if (halves.length === 2) {
    if (hw.length + tw.length > need - 1) return null // '::' stands for at least one zero group
    words.push(...hw, ...new Array<number>(need - hw.length - tw.length).fill(0), ...tw)
  } else {
    if (hw.length !== need) return null
    words.push(...hw)
  }
  const out = new Uint8Array(16)
  words.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff })
  if (v4) out.set(v4, 12)
  return out
}

const isMappedV4 = (b: Uint8Array): boolean => b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff

/**
 * Parses an IP literal (IPv4 dotted quad, IPv6 with or without brackets); null for
 * anything else, hostnames included. IPv4-mapped IPv6 comes back as IPv4, so
 * `::ffff:192.0.2.1` and `192.0.2.1` are the same address.
 */
export function parseIp (text: string): IpAddress | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 47) return null
  const s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  if (!s.includes(':')) {
    const b = parseV4(s)
    return b ? { family: 4, bytes: b } : null
  }
  const b = parseV6(s)
  if (!b) return null
  return isMappedV4(b) ? { family: 4, bytes: b.slice(12) } : { family: 6, bytes: b }
}

/** canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run of ≥ 2 groups as '::') */
export function formatIp (ip: IpAddress): string {
  if (ip.family === 4) return [...ip.bytes].join('.')
  const w = Array.from({ length: 8 }, (_, i) => (ip.bytes[2 * i] << 8) | ip.bytes[2 * i + 1])
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && w[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = w.map((x) => x.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/** the canonical text of `text` if it is an IP literal, else null */
export const canonicalIp = (text: string): string | null => {
  const ip = parseIp(text)
  return ip ? formatIp(ip) : null
}

/** two texts name the same IP address (compared as parsed addresses, never as strings) */
export function sameIp (a: string, b: string): boolean {
  const x = parseIp(a)
  const y = parseIp(b)
  return x !== null && y !== null && x.family === y.family && x.bytes.every((v, i) => v === y.bytes[i])
}

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'unspecified' | 'multicast' | 'reserved'

const inV4 = (b: Uint8Array, net: [number, number, number, number], bits: number): boolean => {
  const a = (b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) >>> 0
  const n = (net[0] << 24 | net[1] << 16 | net[2] << 8 | net[3]) >>> 0
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
  return ((a & mask) >>> 0) === ((n & mask) >>> 0)
}

const V4_CLASSES: [[number, number, number, number], number, AddressClass][] = [
  [[0, 0, 0, 0], 32, 'unspecified'],
  [[0, 0, 0, 0], 8, 'reserved'], // "this network" (RFC 1122)
  [[10, 0, 0, 0], 8, 'private'], // RFC 1918
  [[100, 64, 0, 0], 10, 'private'], // shared address space, carrier-grade NAT (RFC 6598)
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local'], // RFC 3927 (cloud metadata lives here)
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 168, 0, 0], 16, 'private'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved'], // including 255.255.255.255
]

/**
 * What kind of address this is. Only 'public' addresses may be listed outside a private
 * test network (docs/PROTOCOL.md §7.1): loopback, RFC 1918 / RFC 6598 / ULA, link-local,
 * unspecified, multicast and reserved space are where a relay would be steered at the
 * directory's or a relay's own neighbourhood (P7). Documentation ranges count as public.
 */
export function addressClass (ip: IpAddress): AddressClass {
  const b = ip.bytes
  if (ip.family === 4) {
    for (const [net, bits, cls] of V4_CLASSES) if (inV4(b, net, bits)) return cls
    return 'public'
  }
  if (b.every((x) => x === 0)) return 'unspecified'
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return 'loopback'
  if ((b[0] & 0xfe) === 0xfc) return 'private' // fc00::/7 unique local (RFC 4193)
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return 'link-local' // fe80::/10
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0xc0) return 'private' // fec0::/10 (deprecated site-local)
  if (b[0] === 0xff) return 'multicast'
  if (b.subarray(0, 12).every((x) => x === 0)) return 'reserved' // IPv4-compatible ::a.b.c.d (deprecated)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) return 'reserved' // 64:ff9b::/96 NAT64 maps onto IPv4 space
  if (b[0] === 0x20 && b[1] === 0x02) return 'reserved' // 2002::/16 6to4 embeds an IPv4 address
  return 'public'
}

/** the address's group for the subnet rule: its IPv4 /16 or its IPv6 /32 (path-spec §2.2) */
export function subnetKey (ip: IpAddress): string {
  const b = ip.bytes
  return ip.family === 4 ? `4:${b[0]}.${b[1]}` : `6:${[...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join('')}`
}

/** the address itself, as a key (canonical text with its family) */
export const ipKey = (ip: IpAddress): string => `${ip.family}:${formatIp(ip)}`
