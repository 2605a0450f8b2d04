import { couponStatus, isFinished, type Coupon } from '../coupon.js';
import { couponNotFound, DomainError } from '../errors.js';
import type { CouponRepository, EventControl, EventScheduler } from '../ports.js';

/**
 * Pauses an event: PostgreSQL first (the record), then the Redis gate, which
 * then refuses new requests with EVENT_PAUSED and decides nothing; requests
 * already queued keep their place. Pausing twice is harmless. A scheduled
 * event can be paused ahead of its start; a finished one cannot.
 */
export class PauseCoupon {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      control: EventControl;
      scheduler: EventScheduler;
      now?: () => Date;
    },
  ) {}

  async execute(couponId: number): Promise<Coupon> {
    const current = await this.deps.coupons.findById(couponId);
    if (!current) throw couponNotFound(couponId);
    const status = couponStatus(current, this.deps.now?.() ?? new Date());
    if (isFinished(status)) {
      throw new DomainError('EVENT_FINISHED', `coupon ${couponId} is ${status}: nothing to pause`);
    }
    const coupon = await this.deps.coupons.setPaused(couponId, true);
    if (!coupon) throw couponNotFound(couponId);
    await this.deps.control.setPaused(couponId, true);
    await this.deps.scheduler.schedule(coupon);
    return coupon;
  }
}
