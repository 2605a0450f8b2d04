import type { Coupon } from '../coupon.js';
import { couponNotFound } from '../errors.js';
import type { CouponRepository, EventControl, EventScheduler } from '../ports.js';

/**
 * Resumes a paused event: PostgreSQL first, then the Redis gate; the worker
 * then decides the waiting requests in their arrival order. Resuming an event
 * that is not paused changes nothing, whatever its state: it only lifts a
 * restriction.
 */
export class ResumeCoupon {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      control: EventControl;
      scheduler: EventScheduler;
    },
  ) {}

  async execute(couponId: number): Promise<Coupon> {
    const coupon = await this.deps.coupons.setPaused(couponId, false);
    if (!coupon) throw couponNotFound(couponId);
    // A retired event has no Redis keys left, and writing the flag would leave one behind.
    if (!coupon.retiredAt) await this.deps.control.setPaused(couponId, false);
    await this.deps.scheduler.schedule(coupon);
    return coupon;
  }
}
