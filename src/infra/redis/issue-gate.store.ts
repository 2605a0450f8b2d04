import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CouponGateState } from '../../domain/coupon.js';
import type { RequestRef } from '../../domain/issue-request.js';
import { DependencyUnavailableError } from '../../domain/errors.js';
import type {
  AcceptResult,
  AdmissionQuota,
  IssueGate,
  PendingLookup,
  QuotaReading,
} from '../../domain/ports.js';
import { redisCall } from './guard.js';
import type { RedisKeys } from './keys.js';
import { fillScratchSet } from './scratch-set.js';
import type { RedisScripts } from './scripts.js';
import { timeReplyMs } from './time.js';

export class RedisIssueGate implements IssueGate {
  /** Redis's clock minus this process's, so deadlines are written in Redis time. */
  private clockOffsetMs = 0;

  constructor(
    private readonly redis: Redis,
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
    /** The connection's command timeout: past it the client has been answered 503. */
    private readonly commandTimeoutMs: number,
  ) {}

  async accept(
    couponId: number,
    userId: string,
    nonce: string,
    quotas: readonly AdmissionQuota[] = [],
  ): Promise<AcceptResult> {
    if (quotas.length > 2) throw new Error('the accept script counts at most two quotas');
    const k = this.keys.coupon(couponId);
    // A timed-out command is still delivered to Redis; the script refuses to act once the
    // client has given up. The margin leaves room for the reply's trip back.
    const deadline = Date.now() + this.clockOffsetMs + Math.floor(this.commandTimeoutMs * 0.8);
    const [q1, q2] = quotas;
    // An absent quota names a key the script leaves alone (0 points): the meta's.
    const reply = (await redisCall(() =>
      this.scripts.run(
        'accept',
        [
          k.meta,
          k.issued,
          k.queue,
          k.requests,
          k.inflight,
          q1 ? this.quotaKey(q1) : k.meta,
          q2 ? this.quotaKey(q2) : k.meta,
        ],
        [
          userId,
          nonce,
          deadline,
          q1?.points ?? 0,
          q1?.windowS ?? 0,
          q2?.points ?? 0,
          q2?.windowS ?? 0,
        ],
      ),
    )) as [number, number, number, number, number, (string | number)?, string?];
    const [code, c1, r1, c2, r2, first, second] = reply;
    // One reading per quota asked for; none (and nothing allocated) without quotas.
    const readings: readonly QuotaReading[] | undefined = q1
      ? q2
        ? [
            { consumed: c1, resetMs: r1 },
            { consumed: c2, resetMs: r2 },
          ]
        : [{ consumed: c1, resetMs: r1 }]
      : undefined;
    switch (code) {
      case 0:
        return { kind: 'accepted', arrival: String(first), nonce, readings };
      case 1:
        return {
          kind: 'alreadyPending',
          arrival: String(first),
          nonce: String(second),
          readings,
        };
      case 2:
        return { kind: 'rejected', code: 'ALREADY_ISSUED', readings };
      case 3:
        return { kind: 'rejected', code: 'SOLD_OUT', readings };
      case 4:
        return { kind: 'rejected', code: 'EVENT_NOT_OPEN', readings };
      case 5:
        return { kind: 'notLoaded' };
      case 7:
        return { kind: 'rejected', code: 'EVENT_PAUSED', readings };
      case 8: {
        const quota = first === 2 ? q2 : q1;
        if (quota) return { kind: 'overQuota', quota, readings };
        break;
      }
      case 6:
        throw new DependencyUnavailableError(
          'redis',
          new Error('Redis ran the request after the caller gave up on it'),
        );
    }
    throw new Error(`accept script returned ${JSON.stringify(reply)}`);
  }

  /** rate-limiter-flexible's key for the same limit and subject (`<prefix>rl:<name>:<subject>`). */
  private quotaKey(quota: AdmissionQuota): string {
    return `${this.keys.rateLimit(quota.name)}:${quota.subject}`;
  }

  /**
   * Measures how far Redis's clock is from this process's (half a round trip
   * of error at most); called at start and every minute.
   */
  async measureClockOffset(): Promise<number> {
    const sent = Date.now();
    const redisMs = timeReplyMs(await redisCall(() => this.redis.time()));
    const received = Date.now();
    this.clockOffsetMs = redisMs - Math.round((sent + received) / 2);
    return this.clockOffsetMs;
  }

  async load(state: CouponGateState): Promise<void> {
    const k = this.keys.coupon(state.couponId);
    await redisCall(async () => {
      // A large issued set is built beside the live one, then swapped in atomically.
      const scratch = await fillScratchSet(
        this.redis,
        this.keys,
        state.couponId,
        state.issuedUserIds,
      );
      await this.scripts.run(
        'load',
        [k.meta, k.issued, scratch, this.keys.activeCoupons()],
        [
          state.totalQuantity,
          state.remaining,
          state.startsAt?.getTime() ?? '',
          state.endsAt?.getTime() ?? '',
          state.closed ? 1 : 0,
          randomBytes(8).toString('hex'),
          state.couponId,
          state.paused ? 1 : 0,
        ],
      );
    });
  }

  async close(couponId: number): Promise<void> {
    // Written even when the gate is not loaded, so a load racing this close cannot reopen it.
    await redisCall(() => this.redis.hset(this.keys.coupon(couponId).meta, 'closed', '1'));
  }

  async pending(ref: RequestRef): Promise<PendingLookup> {
    const k = this.keys.coupon(ref.couponId);
    const reply = (await redisCall(() =>
      this.scripts.run('status', [k.requests, k.queue, k.meta], [ref.arrival, ref.nonce]),
    )) as [number, string, number?];
    if (reply[0] === 0) return { kind: 'absent', since: reply[1] === '' ? null : reply[1] };
    // A request being decided right now is next in line.
    return { kind: 'waiting', userId: reply[1], queuePosition: Math.max(0, Number(reply[2])) };
  }
}
