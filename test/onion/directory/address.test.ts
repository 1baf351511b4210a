// IP literals (src/onion/directory/address.ts) with vectors: strict parsing (names and
// odd forms refused), IPv4-mapped IPv6 folded to IPv4, RFC 5952 text, address classes,
// and the /16 and /32 groups path selection uses.
import t from 'tap'
import { addressClass, canonicalIp, formatIp, parseIp, sameIp, subnetKey } from '../../../src/onion/directory/address.js'

t.test('parses IPv4 and IPv6 literals, refuses everything else', async (t) => {
  const good: [string, string][] = [
    ['192.0.2.1', '192.0.2.1'], ['0.0.0.0', '0.0.0.0'], ['255.255.255.255', '255.255.255.255'],
    ['::1', '::1'], ['::', '::'], ['2001:db8::1', '2001:db8::1'], ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'], ['[2001:db8::2]', '2001:db8::2'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], ['1::', '1::'], ['fe80::1', 'fe80::1'],
    ['::ffff:192.0.2.1', '192.0.2.1'], ['::FFFF:c000:0201', '192.0.2.1'], ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
  ]
  for (const [text, canonical] of good) t.equal(canonicalIp(text), canonical, `${text} → ${canonical}`)
  const bad = ['', 'localhost', 'r1.evil.example', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.256', '1.2.3.-1', ' 1.2.3.4',
    '0x7f.0.0.1', '127.1', '2130706433', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::1', 'fe80::1%eth0',
    '::1.2.3', 'g::1', ':1', '1:', '1:2:3:4:5:6:7::8', '[::1', '::ffff:1.2.3.4.5']
  for (const text of bad) t.equal(parseIp(text), null, `refused ${JSON.stringify(text)}`)
})

t.test('addresses compare parsed, not as strings', async (t) => {
  t.ok(sameIp('2001:db8::1', '2001:0DB8:0:0::0001'))
  t.ok(sameIp('::ffff:127.0.0.1', '127.0.0.1'), 'IPv4-mapped IPv6 is the IPv4 address')
  t.notOk(sameIp('2001:db8::1', '2001:db8::2'))
  t.notOk(sameIp('r1.evil.example', 'r1.evil.example'), 'a name is no address, not even equal to itself')
})

t.test('address classes: only public space is listable outside a private network', async (t) => {
  const cls: [string, string][] = [
    ['8.8.8.8', 'public'], ['192.0.2.1', 'public'], ['2001:db8::1', 'public'], ['2606:4700::1', 'public'],
    ['127.0.0.1', 'loopback'], ['127.255.1.2', 'loopback'], ['::1', 'loopback'], ['::ffff:127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'], ['100.64.0.1', 'private'],
    ['fc00::1', 'private'], ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'link-local'], ['fe80::1', 'link-local'], ['febf::1', 'link-local'],
    ['0.0.0.0', 'unspecified'], ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'], ['239.1.1.1', 'multicast'], ['ff02::1', 'multicast'],
    ['0.1.2.3', 'reserved'], ['240.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'], ['::127.0.0.1', 'reserved'],
    ['64:ff9b::7f00:1', 'reserved'], ['2002:7f00:1::1', 'reserved'],
    ['172.15.255.255', 'public'], ['172.32.0.0', 'public'], ['100.128.0.0', 'public'], ['fe00::1', 'public'],
  ]
  for (const [text, c] of cls) t.equal(addressClass(parseIp(text)!), c, `${text} is ${c}`)
})

t.test('subnet groups: IPv4 /16, IPv6 /32', async (t) => {
  const key = (s: string) => subnetKey(parseIp(s)!)
  t.equal(key('203.0.113.7'), key('203.0.5.9'), 'same /16')
  t.not(key('203.0.113.7'), key('203.1.113.7'), 'other /16')
  t.equal(key('2001:db8::1'), key('2001:db8:ffff::2'), 'same /32')
  t.not(key('2001:db8::1'), key('2001:db9::1'), 'other /32')
  t.equal(key('::ffff:203.0.113.7'), key('203.0.1.1'), 'mapped IPv6 groups with its IPv4 /16')
  t.not(key('0.0.0.0'), key('::'), 'families never share a group')
  t.equal(formatIp(parseIp('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1', 'RFC 5952: the first of equal zero runs')
})
