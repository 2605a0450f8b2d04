import type { Redis } from 'ioredis';
import { RedisKeys } from '../../src/infra/redis/keys.js';
import { RedisScripts } from '../../src/infra/redis/scripts.js';

const IN_FLIGHT = 5_000;

/**
 * Queues `n` requests from distinct users through the service's own accept
 * script (the same writes the API makes), many at a time on one connection.
 */
export async function prefillQueue(
  redis: Redis,
  prefix: string,
  couponId: number,
  n: number,
  userPrefix: string,
): Promise<void> {
  const scripts = new RedisScripts(redis);
  const k = new RedisKeys(prefix).coupon(couponId);
  // No rate-limit quotas (points 0): the meta key stands in for their counters, untouched.
  const keys = [k.meta, k.issued, k.queue, k.requests, k.inflight, k.meta, k.meta];
  for (let start = 0; start < n; start += IN_FLIGHT) {
    const calls: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(n, start + IN_FLIGHT); i += 1) {
      calls.push(
        scripts.run('accept', keys, [
          `${userPrefix}${i.toString(36)}`,
          'Nonce00000',
          '',
          0,
          0,
          0,
          0,
        ]),
      );
    }
    const replies = (await Promise.all(calls)) as [number][];
    const refused = replies.filter((r) => r[0] !== 0).length;
    if (refused > 0) throw new Error(`prefill: ${refused} requests were not queued`);
  }
}
