import type { Redis } from 'ioredis';
import type pg from 'pg';

const POP = "return redis.call('ZPOPMIN', KEYS[1], ARGV[1])";

/**
 * The bare ceiling for the drain: per batch, one Lua pop of BATCH_SIZE
 * members and one multi-row INSERT of the same rows into a table shaped like
 * issue_requests (its identifiers compared byte by byte, as there). No
 * decisions, no second table, no transaction around them. Returns rows per
 * second.
 */
export async function measureDrainCeiling(
  redis: Redis,
  db: pg.Client,
  keyBase: string,
  n: number,
  batchSize: number,
): Promise<number> {
  const key = `${keyBase}:{ceiling}:queue`;
  for (let start = 0; start < n; start += 10_000) {
    const args: (string | number)[] = [];
    for (let i = start; i < Math.min(n, start + 10_000); i += 1) args.push(i, `ceiling-user-${i}`);
    await redis.zadd(key, ...args);
  }
  await db.query('DROP TABLE IF EXISTS drain_ceiling');
  await db.query(`CREATE TABLE drain_ceiling (
    request_id text COLLATE "C" PRIMARY KEY, coupon_id bigint NOT NULL,
    user_id text COLLATE "C" NOT NULL, status text NOT NULL,
    reason text, issue_id bigint, requested_at timestamptz NOT NULL, decided_at timestamptz NOT NULL)`);
  const sha = (await redis.script('LOAD', POP)) as string;

  const started = performance.now();
  let moved = 0;
  for (;;) {
    const popped = (await redis.evalsha(sha, 1, key, batchSize)) as string[];
    if (popped.length === 0) break;
    const values: string[] = [];
    const params: unknown[] = [];
    const now = new Date();
    for (let i = 0; i < popped.length; i += 2) {
      const b = params.length;
      values.push(`($${b + 1}, 1, $${b + 2}, 'ISSUED', NULL, $${b + 3}, $${b + 4}, $${b + 4})`);
      params.push(`r-${popped[i + 1]}`, popped[i], i, now);
    }
    await db.query(`INSERT INTO drain_ceiling VALUES ${values.join(',')}`, params);
    moved += popped.length / 2;
  }
  const seconds = (performance.now() - started) / 1000;
  await db.query('DROP TABLE drain_ceiling');
  return Math.round(moved / seconds);
}
