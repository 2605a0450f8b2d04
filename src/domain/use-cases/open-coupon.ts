import { couponStatus, type Coupon } from '../coupon.js';
import { couponNotFound, DomainError } from '../errors.js';
import type { CouponRepository, EventControl, EventScheduler } from '../ports.js';
import type { CouponGateLoader } from './coupon-gate-loader.js';

/**
 * Opens a scheduled event now: its `startsAt` becomes now in PostgreSQL, then
 * in the Redis gate (which is loaded if it was not), then its jobs are moved.
 * An open event stays as it is, so opening twice is harmless. A paused event
 * is not opened: resuming it is a separate, deliberate step. A finished event
 * (closed, ended, sold out) cannot open again.
 */
export class OpenCoupon {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      control: EventControl;
      loader: CouponGateLoader;
      scheduler: EventScheduler;
      now?: () => Date;
    },
  ) {}

  async execute(couponId: number): Promise<Coupon> {
    const current = await this.deps.coupons.findById(couponId);
    if (!current) throw couponNotFound(couponId);
    const status = couponStatus(current, this.deps.now?.() ?? new Date());
    if (status === 'OPEN') return current;
    if (status === 'PAUSED') {
      throw new DomainError(
        'EVENT_PAUSED',
        `coupon ${couponId} is open but paused: resume it with POST /coupons/${couponId}/resume`,
      );
    }
    if (status !== 'SCHEDULED') {
      throw new DomainError('EVENT_FINISHED', `coupon ${couponId} is ${status} and cannot open`);
    }
    const coupon = await this.deps.coupons.startNow(couponId);
    if (!coupon) throw couponNotFound(couponId);
    const written = await this.deps.control.setWindow(couponId, coupon.startsAt, coupon.endsAt);
    if (!written) await this.deps.loader.ensureLoaded(couponId);
    await this.deps.scheduler.schedule(coupon);
    return coupon;
  }
}
