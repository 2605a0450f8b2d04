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
import { timeReplyMs } from './time.js';

/** Coupons whose state one MULTI reads: bounds how long Redis is held. */
const ROUNDS_CHUNK = 500;

/** The replies of a pipeline or MULTI; the first failed command's error is thrown. */
function replies(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('the Redis transaction was discarded');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

export class RedisIssueQueue implements IssueQueue {
  constructor(
    private readonly redis: Redis,
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
  ) {}

  /**
   * Every coupon whose gate was loaded stays in the active set until it is
   * retired, open events without a single request included. Asking each one
   * for a batch would cost a script call per coupon per pass; one pipeline
   * of counts says which have queued requests or batches in flight.
   */
  async activeCoupons(): Promise<number[]> {
    const ids = await this.loadedCoupons();
    if (ids.length === 0) return ids;
    const counts = await redisCall(async () => {
      const pipeline = this.redis.pipeline();
      for (const id of ids) {
        const k = this.keys.coupon(id);
        pipeline.zcard(k.queue).zcard(k.leases);
      }
      return replies(await pipeline.exec());
    });
    return ids.filter((_, i) => Number(counts[2 * i]) > 0 || Number(counts[2 * i + 1]) > 0);
  }

  /**
   * A coupon that is closed or past its end, with nothing queued and no batch
   * in flight, is finished for good: the accept script refuses it new
   * requests, and only a batch in flight could put requests back in its
   * queue.
   */
  async retireFinished(): Promise<number[]> {
    const finished = (await this.roundsState(await this.loadedCoupons()))
      .filter((c) => c.finished)
      .map((c) => c.id);
    if (finished.length > 0) {
      await redisCall(() => this.redis.srem(this.keys.activeCoupons(), ...finished));
    }
    return finished;
  }

  async reactivate(couponIds: readonly number[]): Promise<number[]> {
    // A finished coupon stays out: it would only be retired again.
    const missing = (await this.roundsState(couponIds))
      .filter((c) => c.loaded && !c.inRounds && !c.finished)
      .map((c) => c.id);
    if (missing.length > 0) {
      await redisCall(() => this.redis.sadd(this.keys.activeCoupons(), ...missing));
    }
    return missing;
  }

  /**
   * Each coupon's state is read in one MULTI (Redis's clock with it), so no
   * take or compensation can fall between the reads.
   */
  private async roundsState(
    ids: readonly number[],
  ): Promise<{ id: number; loaded: boolean; finished: boolean; inRounds: boolean }[]> {
    const states = [];
    for (let from = 0; from < ids.length; from += ROUNDS_CHUNK) {
      const chunk = ids.slice(from, from + ROUNDS_CHUNK);
      const state = await redisCall(async () => {
        const tx = this.redis.multi().time();
        for (const id of chunk) {
          const k = this.keys.coupon(id);
          tx.hmget(k.meta, 'stock', 'closed', 'endsAt')
            .zcard(k.queue)
            .zcard(k.leases)
            .sismember(this.keys.activeCoupons(), id);
        }
        return replies(await tx.exec());
      });
      const nowMs = timeReplyMs(state[0] as string[]);
      for (const [i, id] of chunk.entries()) {
        const [stock, closed, endsAt] = state[1 + 4 * i] as (string | null)[];
        const ended = closed === '1' || (!!endsAt && Number(endsAt) <= nowMs);
        const idle = Number(state[2 + 4 * i]) === 0 && Number(state[3 + 4 * i]) === 0;
        states.push({
          id,
          loaded: stock !== null && stock !== undefined,
          finished: ended && idle,
          inRounds: Number(state[4 + 4 * i]) === 1,
        });
      }
    }
    return states;
  }

  private async loadedCoupons(): Promise<number[]> {
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
        [k.meta, k.issued, k.queue, k.requests, k.inflight, k.batches, k.leases, k.sync],
        [size, leaseMs, batchId],
      ),
    )) as string | null;
    if (!reply) return null;
    return parseRecord(couponId, batchId, reply);
  }

  async claimExpired(couponId: number, leaseMs: number, limit: number): Promise<DecidedBatch[]> {
    const k = this.keys.coupon(couponId);
    const reply = (await redisCall(() =>
      this.scripts.run('claim-expired', [k.leases, k.batches, k.requests], [leaseMs, limit]),
    )) as [string, string][];
    return reply.map(([batchId, record]) => parseRecord(couponId, batchId, record));
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

/**
 * A batch's record as the take script stores and returns it (and as claim-expired
 * returns it): `{d, e, i: [user, arrival, outcome, ...], n: [nonce, ...]}`.
 */
function parseRecord(couponId: number, batchId: string, raw: string): DecidedBatch {
  const record = JSON.parse(raw) as { d: number; e?: string; i: (string | number)[]; n: string[] };
  const { i: decided, n: nonces } = record;
  const items: BatchItem[] = new Array<BatchItem>(nonces.length);
  for (let at = 0, j = 0; at < decided.length; at += 3, j += 1) {
    items[j] = {
      userId: String(decided[at]),
      arrival: String(decided[at + 1]),
      outcome: outcomeFromCode(decided[at + 2]),
      nonce: String(nonces[j]),
    };
  }
  return { batchId, couponId, epoch: String(record.e ?? ''), decidedAt: new Date(record.d), items };
}
