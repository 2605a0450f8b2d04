import type { Redis } from 'ioredis';
import type {
  BatchItem,
  Correction,
  DecidedBatch,
  IssueQueue,
  RedisSettlement,
} from '../../domain/ports.js';
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
    return parseBatch(couponId, batchId, reply, 0);
  }

  async claimExpired(couponId: number, leaseMs: number, limit: number): Promise<DecidedBatch[]> {
    const k = this.keys.coupon(couponId);
    const reply = (await redisCall(() =>
      this.scripts.run('claim-expired', [k.leases, k.batches, k.requests], [leaseMs, limit]),
    )) as (string | number)[][];
    return reply.map((entry) => parseBatch(couponId, String(entry[0]), entry, 1));
  }

  async acknowledge(
    batch: DecidedBatch,
    corrections: readonly Correction[],
  ): Promise<RedisSettlement> {
    const k = this.keys.coupon(batch.couponId);
    const args: (string | number)[] = [batch.batchId, batch.epoch];
    for (const c of corrections) args.push(c.userId, outcomeToCode(c.to));
    const reply = await redisCall(() =>
      this.scripts.run(
        'ack',
        [k.meta, k.issued, k.requests, k.inflight, k.batches, k.leases],
        args,
      ),
    );
    return settlement(reply);
  }

  async compensate(batch: DecidedBatch): Promise<RedisSettlement> {
    const k = this.keys.coupon(batch.couponId);
    const reply = await redisCall(() =>
      this.scripts.run(
        'compensate',
        [k.meta, k.issued, k.queue, k.requests, k.inflight, k.batches, k.leases],
        [batch.batchId, batch.epoch],
      ),
    );
    return settlement(reply);
  }
}

function settlement(reply: unknown): RedisSettlement {
  if (reply === 1) return 'settled';
  if (reply === 0) return 'alreadySettled';
  if (reply === -1) return 'gateRebuilt';
  throw new Error(`unexpected settle reply ${JSON.stringify(reply)}`);
}

/** `{decidedAt, epoch, user, arrival, outcome, nonce, ...}` starting at `offset`. */
function parseBatch(
  couponId: number,
  batchId: string,
  reply: (string | number)[],
  offset: number,
): DecidedBatch {
  const items: BatchItem[] = [];
  for (let i = offset + 2; i < reply.length; i += 4) {
    items.push({
      userId: String(reply[i]),
      arrival: String(reply[i + 1]),
      outcome: outcomeFromCode(reply[i + 2]),
      nonce: String(reply[i + 3]),
    });
  }
  return {
    batchId,
    couponId,
    epoch: String(reply[offset + 1]),
    decidedAt: new Date(Number(reply[offset])),
    items,
  };
}
