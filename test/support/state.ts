import { expect } from 'chai';
import type { Container } from '../../src/container.js';
import { keyExpiryAt, type Coupon } from '../../src/domain/coupon.js';

/**
 * A byte-for-byte picture of everything the service stores: every Redis key
 * under the prefix (DUMP payloads) and every row of every table. BullMQ's
 * keys are left out: a running worker process touches them on its own
 * (stalled-job checks, its event stream) whatever the service does.
 */
export async function snapshot(
  container: Container,
  prefix: string,
): Promise<{ redis: Record<string, string>; postgres: Record<string, string> }> {
  const redis: Record<string, string> = {};
  let cursor = '0';
  do {
    const [next, keys] = await container.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    for (const key of keys) {
      // Liveness, not state: beats change every second whatever else happens.
      if (key === container.keys.workerHeartbeats()) continue;
      if (key.startsWith(container.keys.bullPrefix() + ':')) continue;
      if (key.endsWith(':meta')) {
        // The open job's mark is the lifecycle's bookkeeping, like its BullMQ keys above: a
        // worker process frozen in a test may finish its open job once woken. Every other
        // field of the gate is compared.
        const fields = Object.entries(await container.redis.hgetall(key));
        redis[key] = JSON.stringify(fields.filter(([field]) => field !== 'opened').sort());
        continue;
      }
      const dumped = await container.redis.dumpBuffer(key);
      if (dumped) redis[key] = dumped.toString('hex');
    }
    cursor = next;
  } while (cursor !== '0');
  const postgres: Record<string, string> = {};
  for (const table of ['coupons', 'issued_coupons', 'issue_requests', 'worker_batches']) {
    const { rows } = await container.pool.query<{ digest: string | null; n: string }>(
      `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest, count(*) AS n FROM ${table} t`,
    );
    postgres[table] = `${rows[0]?.n}:${rows[0]?.digest}`;
  }
  const sequences = await container.pool.query<{ name: string; last: string }>(
    `SELECT sequencename AS name, coalesce(last_value, 0)::text AS last FROM pg_sequences ORDER BY 1`,
  );
  for (const s of sequences.rows) postgres[`seq:${s.name}`] = s.last;
  return { redis, postgres };
}

export interface CouponState {
  readonly total: number;
  readonly issuedCount: number;
  readonly issuedRows: { userId: string; requestId: string }[];
  readonly requestRows: {
    requestId: string;
    userId: string;
    status: string;
    reason: string | null;
  }[];
  readonly redisStock: number;
  readonly redisIssued: string[];
  readonly queued: number;
  readonly inflight: number;
  readonly pendingRecords: number;
  readonly leasedBatches: number;
}

export async function couponState(container: Container, couponId: number): Promise<CouponState> {
  const k = container.keys.coupon(couponId);
  const [coupon] = (
    await container.pool.query<{ total: number; issued: number }>(
      'SELECT total_quantity AS total, issued_count AS issued FROM coupons WHERE id = $1',
      [couponId],
    )
  ).rows;
  const issuedRows = (
    await container.pool.query<{ userId: string; requestId: string }>(
      'SELECT user_id AS "userId", request_id AS "requestId" FROM issued_coupons WHERE coupon_id = $1 ORDER BY id',
      [couponId],
    )
  ).rows;
  const requestRows = (
    await container.pool.query<CouponState['requestRows'][number]>(
      'SELECT request_id AS "requestId", user_id AS "userId", status, reason FROM issue_requests WHERE coupon_id = $1',
      [couponId],
    )
  ).rows;
  const [stock, issued, queued, inflight, pendingRecords, leasedBatches] = await Promise.all([
    container.redis.hget(k.meta, 'stock'),
    container.redis.smembers(k.issued),
    container.redis.zcard(k.queue),
    container.redis.hlen(k.inflight),
    container.redis.hlen(k.requests),
    container.redis.zcard(k.leases),
  ]);
  return {
    total: coupon?.total ?? 0,
    issuedCount: coupon?.issued ?? 0,
    issuedRows,
    requestRows,
    redisStock: Number(stock),
    redisIssued: issued.sort(),
    queued,
    inflight,
    pendingRecords,
    leasedBatches,
  };
}

/**
 * Fails when a key of the deployment carries an expiry it should not have: a
 * coupon's key may only expire well after its event is over (`keyExpiryAt`,
 * KEY_EXPIRY_AFTER_END_MS after its end or close); scratch sets, sync locks
 * and BullMQ's keys may carry any (see RedisKeys.mayExpire). Run after
 * operator actions and recoveries: a live key that expires forgets state a
 * minute later, long after the test would otherwise have looked.
 */
export async function expectNoStrayExpiry(container: Container): Promise<void> {
  const stray: Record<string, number> = {};
  const coupons = new Map<number, Coupon>();
  const { rows } = await container.pool.query<{
    id: number;
    total: number;
    issued: number;
    startsAt: Date | null;
    endsAt: Date | null;
    closedAt: Date | null;
    createdAt: Date;
  }>(
    `SELECT id, total_quantity AS total, issued_count AS issued, starts_at AS "startsAt",
            ends_at AS "endsAt", closed_at AS "closedAt", created_at AS "createdAt" FROM coupons`,
  );
  for (const r of rows) {
    coupons.set(Number(r.id), {
      id: Number(r.id),
      name: '',
      totalQuantity: Number(r.total),
      issuedCount: Number(r.issued),
      startsAt: r.startsAt,
      endsAt: r.endsAt,
      closedAt: r.closedAt,
      pausedAt: null,
      retiredAt: null,
      createdAt: r.createdAt,
    });
  }
  // A sold-out event's expiry is set from the time of the run that set it: allow that much.
  const slackMs = Math.max(container.config.reconcileEveryMs * 2, 120_000);
  let cursor = '0';
  do {
    const [next, keys] = await container.redis.scan(
      cursor,
      'MATCH',
      container.keys.all(),
      'COUNT',
      1000,
    );
    const checked = keys.filter((key) => !container.keys.mayExpire(key));
    if (checked.length > 0) {
      const pipeline = container.redis.pipeline();
      for (const key of checked) pipeline.pttl(key);
      const ttls = (await pipeline.exec()) ?? [];
      const now = Date.now();
      checked.forEach((key, i) => {
        const ttl = Number(ttls[i]?.[1]);
        if (ttl < 0) return;
        const couponId = container.keys.couponOf(key);
        const coupon = couponId === null ? undefined : coupons.get(couponId);
        const floor = coupon
          ? keyExpiryAt(coupon, container.config.keyExpiryAfterEndMs, new Date(now))
          : null;
        if (!floor || now + ttl < floor.getTime() - slackMs) stray[key] = ttl;
      });
    }
    cursor = next;
  } while (cursor !== '0');
  expect(stray, 'keys carrying an expiry (ms left) they should not have').to.deep.equal({});
}
