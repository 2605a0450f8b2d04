import type { Redis } from 'ioredis';
import type { BatchItem, Correction, DecidedBatch, IssueQueue } from '../../domain/ports.js';
import { redisCall } from './guard.js';
import type { RedisKeys } from './keys.js';
import { outcomeFromCode, outcomeToCode } from './outcome-codes.js';
import type { RedisScripts } from './scripts.js';

export class RedisIssueQueue implements IssueQueue {
  constructor(
    private readonly redis: Redis,
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
  ) {}

  async activeCoupons(): Promise<number[]> {
    const ids = await redisCall(() => this.redis.smembers(this.keys.activeCoupons()));
    return ids.map(Number).sort((a, b) => a - b);
  }

  async take(
    couponId: number,
    size: number,
    leaseMs: number,
    batchId: string,
  ): Promise<DecidedBatch | null> {
    const k = this.keys.coupon(couponId);
    const reply = (await redisCall(() =>
      this.scripts.run(
        'take',
        [k.meta, k.issued, k.queue, k.requests, k.inflight, k.batches, k.leases],
        [size, leaseMs, batchId],
      ),
    )) as (string | number)[] | null;
    if (!reply) return null;
    const items: BatchItem[] = [];
    for (let i = 1; i < reply.length; i += 4) {
      items.push({
        userId: String(reply[i]),
        arrival: String(reply[i + 1]),
        outcome: outcomeFromCode(reply[i + 2]),
        nonce: String(reply[i + 3]),
      });
    }
    return { batchId, couponId, decidedAt: new Date(Number(reply[0])), items };
  }

  async acknowledge(batch: DecidedBatch, corrections: readonly Correction[]): Promise<boolean> {
    const k = this.keys.coupon(batch.couponId);
    const args: (string | number)[] = [batch.batchId];
    for (const c of corrections) args.push(c.userId, outcomeToCode(c.to));
    const reply = await redisCall(() =>
      this.scripts.run(
        'ack',
        [k.meta, k.issued, k.requests, k.inflight, k.batches, k.leases],
        args,
      ),
    );
    return reply === 1;
  }

  async compensate(batch: DecidedBatch): Promise<boolean> {
    const k = this.keys.coupon(batch.couponId);
    const reply = await redisCall(() =>
      this.scripts.run(
        'compensate',
        [k.meta, k.issued, k.queue, k.requests, k.inflight, k.batches, k.leases],
        [batch.batchId],
      ),
    );
    return reply === 1;
  }
}
