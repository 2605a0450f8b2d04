import type { Coupon } from '../coupon.js';
import { couponNotFound } from '../errors.js';
import type { CouponRepository, EventScheduler, IssueGate } from '../ports.js';

/**
 * Closes an event now: PostgreSQL first (the record), then the Redis gate.
 * New requests are refused EVENT_NOT_OPEN; requests still waiting are
 * rejected EVENT_CLOSED by the worker. Closing twice is harmless.
 */
export class CloseCoupon {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      gate: IssueGate;
      /** Told after the close, so that jobs no longer due are dropped. */
      scheduler?: EventScheduler;
    },
  ) {}

  async execute(couponId: number): Promise<Coupon> {
    const coupon = await this.deps.coupons.close(couponId);
    if (!coupon) throw couponNotFound(couponId);
    await this.deps.gate.close(couponId);
    await this.deps.scheduler?.schedule(coupon);
    return coupon;
  }
}
