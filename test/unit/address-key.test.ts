import { expect } from 'chai';
import { addressKey } from '../../src/api/limits.js';

describe('rate limit key of a client address', () => {
  const cases: [address: string, key: string][] = [
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:85a3:1:2:3:4:5', '2001:db8:85a3:1::/64'],
    ['2001:db8:85a3:1:ffff:ffff:ffff:ffff', '2001:db8:85a3:1::/64'],
    ['2001:0db8:0000:0001::1', '2001:db8:0:1::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ];
  for (const [address, key] of cases) {
    it(`when the client is ${address}, then it is counted under ${key}`, () => {
      expect(addressKey(address)).to.equal(key);
    });
  }
});
