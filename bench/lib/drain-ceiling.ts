import type { Redis } from 'ioredis';
import type pg from 'pg';

const POP = "return redis.call('ZPOPMIN', KEYS[1], ARGV[1])";

/**
 * How the bare ceiling moves its rows:
 * - `values`: the issue's bare ceiling, one batch at a time, each one multi-row
 *   `INSERT … VALUES` with one bound parameter per value;
 * - `arrays`: the way the worker moves rows, one array parameter per column
 *   (`unnest`), the next batch popped while the last one is inserted. Faster than
 *   `values`, and so the ceiling the worker's own techniques would reach with
 *   nothing to decide.
 */
export type CeilingStyle = 'values' | 'arrays';

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
  style: CeilingStyle = 'values',
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
  const pop = () => redis.evalsha(sha, 1, key, batchSize) as Promise<string[]>;
  const insert = style === 'values' ? insertValues : insertArrays;

  const started = performance.now();
  let moved = 0;
  let next = pop();
  for (;;) {
    const popped = await next;
    if (popped.length === 0) break;
    if (style === 'arrays') next = pop();
    await insert(db, popped);
    if (style === 'values') next = pop();
    moved += popped.length / 2;
  }
  const seconds = (performance.now() - started) / 1000;
  await db.query('DROP TABLE drain_ceiling');
  return Math.round(moved / seconds);
}

/** `popped`: user, score, user, score, … */
async function insertValues(db: pg.Client, popped: string[]): Promise<void> {
  const values: string[] = [];
  const params: unknown[] = [];
  const now = new Date();
  for (let i = 0; i < popped.length; i += 2) {
    const b = params.length;
    values.push(`($${b + 1}, 1, $${b + 2}, 'ISSUED', NULL, $${b + 3}, $${b + 4}, $${b + 4})`);
    params.push(`r-${popped[i + 1]}`, popped[i], i, now);
  }
  await db.query(`INSERT INTO drain_ceiling VALUES ${values.join(',')}`, params);
}

async function insertArrays(db: pg.Client, popped: string[]): Promise<void> {
  const requestIds: string[] = [];
  const userIds: string[] = [];
  const issueIds: number[] = [];
  for (let i = 0; i < popped.length; i += 2) {
    requestIds.push(`r-${popped[i + 1]}`);
    userIds.push(popped[i] as string);
    issueIds.push(i);
  }
  await db.query(
    `INSERT INTO drain_ceiling
     SELECT r, 1, u, 'ISSUED', NULL, n, $4, $4
     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(r, u, n)`,
    [requestIds, userIds, issueIds, new Date()],
  );
}
