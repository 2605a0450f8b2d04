import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CouponGateState } from '../../domain/coupon.js';
import type { RequestRef } from '../../domain/issue-request.js';
import type { AcceptResult, IssueGate, PendingLookup } from '../../domain/ports.js';
import { redisCall } from './guard.js';
import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

const LOAD_CHUNK = 10_000;
const SCRATCH_TTL_MS = 60_000;

export class RedisIssueGate implements IssueGate {
  constructor(
    private readonly redis: Redis,
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
  ) {}

  async accept(couponId: number, userId: string, nonce: string): Promise<AcceptResult> {
    const k = this.keys.coupon(couponId);
    const reply = (await redisCall(() =>
      this.scripts.run(
        'accept',
        [k.meta, k.issued, k.queue, k.requests, k.inflight],
        [userId, nonce],
      ),
    )) as [number, string?, string?];
    switch (reply[0]) {
      case 0:
        return { kind: 'accepted', arrival: String(reply[1]), nonce };
      case 1:
        return { kind: 'alreadyPending', arrival: String(reply[1]), nonce: String(reply[2]) };
      case 2:
        return { kind: 'rejected', code: 'ALREADY_ISSUED' };
      case 3:
        return { kind: 'rejected', code: 'SOLD_OUT' };
      case 4:
        return { kind: 'rejected', code: 'EVENT_NOT_OPEN' };
      case 5:
        return { kind: 'notLoaded' };
      default:
        throw new Error(`accept script returned ${JSON.stringify(reply)}`);
    }
  }

  async load(state: CouponGateState): Promise<void> {
    const k = this.keys.coupon(state.couponId);
    const scratch = this.keys.couponScratch(state.couponId, randomBytes(6).toString('hex'));
    await redisCall(async () => {
      // A large issued set is built in chunks beside the live one, then swapped in atomically.
      for (let i = 0; i < state.issuedUserIds.length; i += LOAD_CHUNK) {
        await this.redis
          .pipeline()
          .sadd(scratch, ...state.issuedUserIds.slice(i, i + LOAD_CHUNK))
          .pexpire(scratch, SCRATCH_TTL_MS)
          .exec();
      }
      await this.scripts.run(
        'load',
        [k.meta, k.issued, scratch],
        [
          state.totalQuantity,
          state.remaining,
          state.startsAt?.getTime() ?? '',
          state.endsAt?.getTime() ?? '',
          state.closed ? 1 : 0,
          randomBytes(8).toString('hex'),
        ],
      );
      await this.redis.sadd(this.keys.activeCoupons(), state.couponId);
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
