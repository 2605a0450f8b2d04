import { couponNotFound } from '../errors.js';
import { gateDrift, type Drift } from '../gate-drift.js';
import type { CouponRepository, GateMaintenance } from '../ports.js';

export interface ConsistencyReport {
  readonly couponId: number;
  readonly consistent: boolean;
  readonly redis: {
    readonly loaded: boolean;
    readonly totalQuantity?: number;
    readonly stock?: number;
    readonly issuedUsers?: number;
    readonly queued?: number;
    readonly waitingRequests?: number;
    readonly inflightBatches?: number;
    readonly inflightIssued?: number;
    readonly expiredLeases?: number;
    readonly paused?: boolean;
    readonly closed?: boolean;
    readonly operatorPaused?: boolean;
  };
  readonly postgres: {
    readonly totalQuantity: number;
    readonly issuedCount: number;
    readonly remaining: number;
    readonly closed: boolean;
    readonly paused: boolean;
  };
  readonly drift: readonly Drift[];
}

/** Redis and PostgreSQL side by side for one coupon, with any drift named. */
export class CheckConsistency {
  constructor(private readonly deps: { coupons: CouponRepository; maintenance: GateMaintenance }) {}

  async execute(couponId: number): Promise<ConsistencyReport> {
    const postgres = await this.deps.coupons.gateState(couponId);
    if (!postgres) throw couponNotFound(couponId);
    const redis = await this.deps.maintenance.inspect(couponId);
    const drift = gateDrift(redis, postgres);
    return {
      couponId,
      consistent: drift.length === 0,
      redis: redis
        ? {
            loaded: true,
            totalQuantity: redis.totalQuantity,
            stock: redis.stock,
            issuedUsers: redis.issuedUserIds.length,
            queued: redis.queued,
            waitingRequests: redis.waitingRecords,
            inflightBatches: redis.inflightBatches,
            inflightIssued: redis.inflightIssuedUserIds.length,
            expiredLeases: redis.expiredLeases,
            paused: redis.paused,
            closed: redis.closed,
            operatorPaused: redis.operatorPaused ?? false,
          }
        : { loaded: false },
      postgres: {
        totalQuantity: postgres.totalQuantity,
        issuedCount: postgres.totalQuantity - postgres.remaining,
        remaining: postgres.remaining,
        closed: postgres.closed,
        paused: postgres.paused,
      },
      drift,
    };
  }
}
