import { expect } from 'chai';
import { NONCE_ALPHABET, nonceSource } from '../../src/infra/nonce.js';

/** Every byte value once, in order, as many times as asked: a source with no bias of its own. */
function everyByte(): (bytes: number) => Buffer {
  return (bytes) => Buffer.from(Array.from({ length: bytes }, (_, i) => i % 256));
}

function counts(text: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const c of text) seen.set(c, (seen.get(c) ?? 0) + 1);
  return seen;
}

describe('request nonce', () => {
  it('when the bytes run once through all 256 values, then each of the 62 characters comes out exactly 4 times (no modulo bias)', () => {
    // 248 accepted bytes make 31 nonces of 8; the 8 bytes from 248 up are dropped.
    const next = nonceSource(8, everyByte(), 256);
    const text = Array.from({ length: 31 }, () => next()).join('');

    const seen = counts(text);
    expect(seen.size).to.equal(62);
    expect(
      [...seen.values()].every((n) => n === 4),
      JSON.stringify([...seen]),
    ).to.equal(true);
  });

  it('when a pool holds only bytes from 248 up, then none of them is used and the next pool is drawn', () => {
    const pools = [Buffer.from([248, 249, 255, 250]), Buffer.from([0, 61, 62, 247])];
    let drawn = 0;
    const next = nonceSource(4, () => pools[drawn++] as Buffer, 4);

    expect(next()).to.equal('A9A9');
    expect(drawn).to.equal(2);
  });

  it('when nonces are drawn from the system source, then they have the length and only alphabet characters', () => {
    const next = nonceSource(10);
    for (let i = 0; i < 1000; i += 1) {
      expect(next()).to.match(new RegExp(`^[${NONCE_ALPHABET}]{10}$`));
    }
  });
});
