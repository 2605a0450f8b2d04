import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { LimitState, RateLimiter } from '../../domain/ports.js';
import type { RateLimit } from '../config.js';

/** Keys one limiter blocks in memory at most (beyond them Redis's count still refuses). */
const MAX_BLOCKED_KEYS = 100_000;

export interface RateLimiterOptions {
  /**
   * The count at which this process stops asking Redis about a key until its
   * window ends: a flood from one client is then refused in memory. At least
   * `limit.points`; the default blocks from the first refused request.
   */
  readonly blockAt?: number;
  /** Called (often: throttle it) whenever Redis failed and the in-process count answered. */
  readonly onFallback: () => void;
}

/**
 * A fixed-window limit over the service's Redis connection: one EVALSHA per
 * check (rate-limiter-flexible's INCR-with-expiry script), so on the
 * auto-pipelined API connection the checks of many requests share writes.
 * When Redis fails, a per-process in-memory count with the same limit answers
 * instead: each process then admits up to the limit on its own.
 */
export function redisLimiter(
  redis: Redis,
  name: string,
  keyPrefix: string,
  limit: RateLimit,
  options: RateLimiterOptions,
): RateLimiter {
  class FallbackLimiter extends RateLimiterMemory {
    override consume(
      key: string | number,
      points?: number,
      opts?: Record<string, unknown>,
    ): Promise<RateLimiterRes> {
      options.onFallback();
      return super.consume(key, points, opts);
    }
  }
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points: limit.points,
    duration: limit.windowS,
    inMemoryBlockOnConsumed: options.blockAt ?? limit.points + 1,
    // The connection has no offline queue: while it reconnects, fall back at once.
    rejectIfRedisNotReady: true,
    insuranceLimiter: new FallbackLimiter({
      keyPrefix: `${keyPrefix}:fallback`,
      points: limit.points,
      duration: limit.windowS,
    }),
  });
  // Present at run time on every store limiter; rate-limiter-flexible's types omit it.
  const memory = limiter as unknown as { getInMemoryBlockMsBeforeExpire(rlKey: string): number };

  const state = (res: RateLimiterRes, allowed: boolean): LimitState => ({
    allowed,
    limit: limit.points,
    windowS: limit.windowS,
    remaining: res.remainingPoints,
    resetMs: res.msBeforeNext,
  });

  // Blocks from counts taken outside the library (the accept script's): key -> until (ms).
  const blocked = new Map<string, number>();
  const blockedHere = (key: string): number => {
    const until = blocked.get(key);
    if (until === undefined) return 0;
    const ms = until - Date.now();
    if (ms > 0) return ms;
    blocked.delete(key);
    return 0;
  };

  return {
    name,
    limit: limit.points,
    windowS: limit.windowS,
    consume: (key) =>
      limiter.consume(key).then(
        (res) => state(res, true),
        (err: unknown) => {
          if (err instanceof RateLimiterRes) return state(err, false);
          throw err;
        },
      ),
    blockedMs: (key) =>
      blocked.size === 0
        ? memory.getInMemoryBlockMsBeforeExpire(limiter.getKey(key))
        : Math.max(blockedHere(key), memory.getInMemoryBlockMsBeforeExpire(limiter.getKey(key))),
    block(key, ms) {
      // Bounded: a flood from many keys sheds the expired ones first.
      if (blocked.size >= MAX_BLOCKED_KEYS) {
        const now = Date.now();
        for (const [k, until] of blocked) if (until <= now) blocked.delete(k);
        if (blocked.size >= MAX_BLOCKED_KEYS) blocked.delete(blocked.keys().next().value!);
      }
      blocked.set(key, Date.now() + ms);
    },
  };
}
