import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { isIP, isIPv4, isIPv6, nameProblem } from '../../src/names.js';

// Valid, invalid and odd spellings: what the interfaces and IMDS give, what an operator may write, and
// what net.isIP* turns down (zone ids are its, not ours: nameProblem refuses them).
const SPELLINGS = [
  ...['192.0.2.2', '10.0.0.4', '0.0.0.0', '255.255.255.255', '127.0.0.1'],
  ...['256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4\n', '١.٢.٣.٤', '127.1'],
  ...['::', '::1', 'fd00::2', '2001:db8::1', '2001:db8:0:0:0:0:0:1', '2001:DB8::1', 'fe80::1', '2001:db8::'],
  ...['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::8', '2001:0db8::0001', '0:0:0:0:0:0:0:0'],
  ...['::ffff:192.0.2.1', '::ffff:c000:201', '64:ff9b::192.0.2.1', '::192.0.2.1', '::ffff:01.2.3.4'],
  ...['fe80::1%eth0', 'fe80::1%', '::1\n', '::1 ', '[::1]', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::1', ':1', '1:'],
  ...['::g', 'g::1', ':::', '2001:db8::1/64', '', 'photos.example.com', 'localhost', 'a:b', '1:2:3:4:5:6:7'],
];

describe("names.ts's isIP, isIPv4, isIPv6", () => {
  it('answer what node:net answers, for every spelling', () => {
    for (const value of SPELLINGS) {
      expect([value, isIPv4(value)]).toEqual([value, net.isIPv4(value)]);
      expect([value, isIPv6(value)]).toEqual([value, net.isIPv6(value)]);
      expect([value, isIP(value)]).toEqual([value, net.isIP(value)]);
    }
  });
});

describe('nameProblem', () => {
  it('takes DNS names and IP addresses, and refuses a zone id and a name a URL reads as an address', () => {
    for (const ok of ['photos.example.com', '192.0.2.2', 'fd00::2', '2001:DB8::1', '::ffff:192.0.2.1'])
      expect([ok, nameProblem(ok)]).toEqual([ok, undefined]);
    expect(nameProblem('fe80::1%eth0')).toMatch(/zone id/);
    expect(nameProblem('127.1')).toMatch(/read by a URL as the address 127\.0\.0\.1/);
    expect(nameProblem('photos.123')).toMatch(/ends in a number/);
    expect(nameProblem('a b')).toMatch(/neither a DNS name nor an IP address/);
  });
});
