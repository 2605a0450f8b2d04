import type { CouponGateState } from './coupon.js';
import type { GateSnapshot } from './ports.js';

export type DriftCode =
  | 'GATE_NOT_LOADED'
  | 'TOTAL_MISMATCH'
  | 'STOCK_MISMATCH'
  | 'ISSUED_SET_MISSING_USERS'
  | 'ISSUED_SET_EXTRA_USERS'
  | 'CLOSED_MISMATCH'
  | 'EXPIRED_LEASES'
  | 'DRAINING_PAUSED'
  | 'PAUSED_MISMATCH';

export interface Drift {
  readonly code: DriftCode;
  readonly detail: string;
  readonly redis?: unknown;
  readonly postgres?: unknown;
  /** Up to 20 of the users concerned, for the set differences. */
  readonly sample?: readonly string[];
  readonly count?: number;
}

const SAMPLE = 20;

/**
 * What differs between the Redis gate and PostgreSQL. Batches in flight are
 * accounted for: their ISSUED users are already in Redis's set and stock,
 * and may or may not be in PostgreSQL yet, so Redis must equal PostgreSQL
 * plus those users.
 */
export function gateDrift(redis: GateSnapshot | null, postgres: CouponGateState): Drift[] {
  if (!redis) return [{ code: 'GATE_NOT_LOADED', detail: 'Redis holds no gate for this coupon' }];
  const drift: Drift[] = [];
  const expectedIssued = new Set([...postgres.issuedUserIds, ...redis.inflightIssuedUserIds]);
  const expectedStock = postgres.totalQuantity - expectedIssued.size;
  if (redis.totalQuantity !== postgres.totalQuantity) {
    drift.push({
      code: 'TOTAL_MISMATCH',
      detail: 'the total quantity differs',
      redis: redis.totalQuantity,
      postgres: postgres.totalQuantity,
    });
  }
  if (redis.stock !== expectedStock) {
    drift.push({
      code: 'STOCK_MISMATCH',
      detail: 'Redis stock is not the total minus the users issued in PostgreSQL and in flight',
      redis: redis.stock,
      postgres: expectedStock,
    });
  }
  const inRedis = new Set(redis.issuedUserIds);
  const missing = [...expectedIssued].filter((u) => !inRedis.has(u));
  const extra = redis.issuedUserIds.filter((u) => !expectedIssued.has(u));
  if (missing.length > 0) {
    drift.push({
      code: 'ISSUED_SET_MISSING_USERS',
      detail: 'users issued in PostgreSQL are missing from the Redis issued set',
      count: missing.length,
      sample: missing.slice(0, SAMPLE),
    });
  }
  if (extra.length > 0) {
    drift.push({
      code: 'ISSUED_SET_EXTRA_USERS',
      detail: 'the Redis issued set holds users PostgreSQL has not issued',
      count: extra.length,
      sample: extra.slice(0, SAMPLE),
    });
  }
  if (redis.closed !== postgres.closed) {
    drift.push({
      code: 'CLOSED_MISMATCH',
      detail: 'Redis and PostgreSQL disagree on whether the event is closed',
      redis: redis.closed,
      postgres: postgres.closed,
    });
  }
  if ((redis.operatorPaused ?? false) !== postgres.paused) {
    drift.push({
      code: 'PAUSED_MISMATCH',
      detail: 'Redis and PostgreSQL disagree on whether an operator paused the event',
      redis: redis.operatorPaused ?? false,
      postgres: postgres.paused,
    });
  }
  if (redis.expiredLeases > 0) {
    drift.push({
      code: 'EXPIRED_LEASES',
      detail: 'batches whose worker stopped before settling them wait for recovery',
      count: redis.expiredLeases,
    });
  }
  if (redis.paused) {
    drift.push({
      code: 'DRAINING_PAUSED',
      detail: 'draining is paused: a sync holds the coupon (its lock expires if the sync died)',
    });
  }
  return drift;
}
