import { Redis } from 'ioredis';
import pg from 'pg';
import { describeUrl as shown } from '../../src/infra/startup-error.js';
import { SetupError } from './setup-error.js';

/**
 * Fails at once, naming what to start or set, when the bench's PostgreSQL or Redis does
 * not answer: better than a stack trace minutes into a run, or a client retrying forever.
 */
export async function checkStores(redisUrl: string, postgresUrl: string): Promise<void> {
  try {
    await asAdmin(postgresUrl, ['SELECT 1']);
  } catch (err) {
    throw new SetupError(
      `PostgreSQL at ${shown(postgresUrl)} is unreachable (${(err as Error).message}). ` +
        'Start PostgreSQL (for example `docker compose up -d postgres`) or set BENCH_POSTGRES_URL.',
    );
  }
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let cause: Error | undefined;
  redis.on('error', (err: Error) => (cause = err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new SetupError(
      `Redis at ${shown(redisUrl)} is unreachable (${(cause ?? (err as Error)).message}). ` +
        'Start Redis (for example `redis-server` or `docker compose up -d redis`) or set BENCH_REDIS_URL.',
    );
  } finally {
    redis.disconnect();
  }
}

/** The URL of database `name` on the server of `adminUrl`. */
export function databaseUrlOf(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs statements one after another on a connection of its own to the admin database. */
async function asAdmin(adminUrl: string, statements: readonly string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
  await admin.connect();
  try {
    for (const statement of statements) await admin.query(statement);
  } finally {
    await admin.end();
  }
}

/** Drops and creates database `name` (the service migrates it when it starts). */
export function resetDatabase(adminUrl: string, name: string): Promise<void> {
  return asAdmin(adminUrl, [
    `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
    `CREATE DATABASE "${name}"`,
  ]);
}

/** Drops database `name` if it exists. */
export function dropDatabase(adminUrl: string, name: string): Promise<void> {
  return asAdmin(adminUrl, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
}

/** Deletes every key matching the pattern. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}
