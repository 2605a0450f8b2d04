import { Redis } from 'ioredis';
import { StartupError, describeUrl } from '../startup-error.js';

export interface RedisClientOptions {
  /** Shown in CLIENT LIST, so operators can tell the service's connections apart. */
  readonly name: string;
  /**
   * Bound on every command. With no offline queue, a command sent while Redis
   * is down fails at once instead of waiting, so callers answer fast.
   */
  readonly commandTimeoutMs?: number;
  readonly onError?: (err: Error) => void;
  /**
   * Commands issued in the same event-loop turn go out in one write and come
   * back in one read (ioredis auto-pipelining): for a connection carrying many
   * small concurrent commands, far fewer system calls and wake-ups on both
   * sides. Each command still gets its own reply, error and timeout.
   */
  readonly autoPipelining?: boolean;
}

export async function connectRedis(url: string, options: RedisClientOptions): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectionName: options.name,
    enableAutoPipelining: options.autoPipelining ?? false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: options.commandTimeoutMs ?? 1_000,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
  });
  // The connect promise only says "Connection is closed"; the error event has the cause.
  let cause: Error | undefined;
  const onError = options.onError ?? (() => undefined);
  // Without a listener, ioredis prints every reconnect failure; the callers log them, throttled.
  redis.on('error', (err: Error) => {
    cause = err;
    onError(err);
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new StartupError(
      `Redis at ${describeUrl(url)} is unreachable (${(cause ?? (err as Error)).message}). ` +
        'Start Redis (for example `redis-server` or `docker compose up -d redis`) or set REDIS_URL.',
    );
  }
  return redis;
}
