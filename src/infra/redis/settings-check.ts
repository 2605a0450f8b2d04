import type { Redis } from 'ioredis';
import type { Logger } from '../../domain/ports.js';
import { StartupError } from '../startup-error.js';

/**
 * The guarantees rely on Redis never evicting a key (a queue or a gate
 * silently gone) and on it persisting writes (AOF). Eviction is refused in
 * production and warned about elsewhere; missing persistence is warned about.
 */
export async function checkRedisSettings(
  redis: Redis,
  mode: 'refuse' | 'warn',
  logger: Logger,
): Promise<void> {
  let policy: string | undefined;
  let appendonly: string | undefined;
  try {
    policy = ((await redis.config('GET', 'maxmemory-policy')) as string[])[1];
    appendonly = ((await redis.config('GET', 'appendonly')) as string[])[1];
  } catch (err) {
    logger.warn(
      'could not read the Redis configuration (CONFIG GET is disabled?): make sure maxmemory-policy is noeviction and AOF is on',
      {
        error: (err as Error).message,
      },
    );
    return;
  }
  if (policy !== undefined && policy !== 'noeviction') {
    const message =
      `Redis maxmemory-policy is "${policy}": it may evict queued requests or a coupon's gate. ` +
      'Set maxmemory-policy noeviction (or REDIS_EVICTION_CHECK=warn to start anyway).';
    if (mode === 'refuse') throw new StartupError(message);
    logger.warn(message);
  }
  if (appendonly === 'no') {
    logger.warn(
      'Redis persistence (appendonly) is off: a Redis restart loses waiting requests (they are answered REQUEST_LOST). Use appendonly yes in production.',
    );
  }
}
