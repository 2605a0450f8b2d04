import { expect } from 'chai';
import { DomainError } from '../../src/domain/errors.js';
import { arrivalToDate, formatRequestId, parseRequestId } from '../../src/domain/issue-request.js';

describe('request ids', () => {
  it('when an id is formatted and parsed, then the coupon, arrival and nonce come back unchanged', () => {
    const ref = { couponId: 42, arrival: '1763692312345678', nonce: 'Ab3dE9xYz0' };

    const id = formatRequestId(ref);

    expect(id).to.match(/^42-[0-9a-z]+-Ab3dE9xYz0$/);
    expect(parseRequestId(id)).to.deep.equal(ref);
  });

  it('when arrivals are later, then their ids still parse back to the exact microsecond', () => {
    for (const arrival of ['1', '35', '36', '9007199254740991', '1999999999999999']) {
      expect(
        parseRequestId(formatRequestId({ couponId: 1, arrival, nonce: 'AAAAAAAAAA' })).arrival,
      ).to.equal(arrival);
    }
  });

  for (const bad of [
    '',
    'abc',
    '0-1-AAAAAAAAAA',
    '1-0a-AAAAAAAAAA',
    '1-1-AAAA',
    '1-1-AAAAAAAAAA-',
    '01-1-AAAAAAAAAA',
    '1-1-AAAAAAAAA!',
    '1-ABC-AAAAAAAAAA',
    '1-1234567890123-AAAAAAAAAA',
  ]) {
    it(`when the id is ${JSON.stringify(bad)}, then parsing fails with VALIDATION_FAILED`, () => {
      expect(() => parseRequestId(bad))
        .to.throw(DomainError)
        .with.property('code', 'VALIDATION_FAILED');
    });
  }

  it('when an arrival is given in microseconds, then its date is the millisecond it falls in', () => {
    expect(arrivalToDate('1763692312345678').toISOString()).to.equal(
      new Date(1763692312345).toISOString(),
    );
  });
});
