import { expect } from 'chai';
import { RedisKeys } from '../../src/infra/redis/keys.js';

describe('RedisKeys', () => {
  it('when a coupon’s keys are asked for again, then they are the same ones, built once, in the coupon’s hash tag', () => {
    const keys = new RedisKeys('p:');

    const first = keys.coupon(7);

    expect(keys.coupon(7)).to.equal(first);
    expect(first.meta).to.equal('p:coupon:{7}:meta');
    expect(Object.values(first).every((key) => key.startsWith('p:coupon:{7}:'))).to.equal(true);
    expect(Object.isFrozen(first)).to.equal(true);
    expect(keys.coupon(8).meta).to.equal('p:coupon:{8}:meta');
  });

  it('when more coupons are asked for than it keeps, then every answer is still its own coupon’s', () => {
    const keys = new RedisKeys('p:');

    for (let id = 1; id <= 3000; id += 1) {
      expect(keys.coupon(id).queue).to.equal(`p:coupon:{${id}}:queue`);
    }
    expect(keys.coupon(1).queue).to.equal('p:coupon:{1}:queue');
    expect(keys.coupon(2999)).to.equal(keys.coupon(2999));
  });
});
