import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';

const CHUNK = 10_000;
const SCRATCH_TTL_MS = 60_000;

/**
 * Builds a set of user ids in a scratch key of the coupon's slot, in chunks,
 * so that a large issued set can then be swapped in by one script (RENAME).
 * The key expires on its own if the swap never happens. Returns its name.
 */
export async function fillScratchSet(
  redis: Redis,
  keys: RedisKeys,
  couponId: number,
  members: readonly string[],
): Promise<string> {
  const scratch = keys.couponScratch(couponId, randomBytes(6).toString('hex'));
  for (let i = 0; i < members.length; i += CHUNK) {
    await redis
      .pipeline()
      .sadd(scratch, ...members.slice(i, i + CHUNK))
      .pexpire(scratch, SCRATCH_TTL_MS)
      .exec();
  }
  return scratch;
}
