import type { Redis } from 'ioredis';
import type { EventKeys } from '../../domain/ports.js';
import { redisCall } from './guard.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

export class RedisEventKeys implements EventKeys {
  constructor(
    private readonly redis: Redis,
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
  ) {}

  async markOpened(couponId: number): Promise<boolean> {
    const k = this.keys.coupon(couponId);
    return (await redisCall(() => this.redis.hsetnx(k.meta, 'opened', '1'))) === 1;
  }

  async expireAt(couponId: number, at: Date | null): Promise<void> {
    // The sync lock keeps its own short expiry: lengthening it would hold draining up.
    const targets = this.keys.couponKeyList(couponId).filter((key) => !this.keys.mayExpire(key));
    await redisCall(async () => {
      const tx = this.redis.multi();
      for (const key of targets) {
        if (at) tx.pexpireat(key, at.getTime());
        else tx.persist(key);
      }
      await tx.exec();
    });
  }

  async retire(couponId: number): Promise<'retired' | 'busy'> {
    const k = this.keys.coupon(couponId);
    const reply = await redisCall(() =>
      this.scripts.run(
        'retire',
        [
          k.meta,
          k.issued,
          k.queue,
          k.requests,
          k.inflight,
          k.batches,
          k.leases,
          k.sync,
          this.keys.activeCoupons(),
        ],
        [couponId],
      ),
    );
    return reply === 1 ? 'retired' : 'busy';
  }
}
