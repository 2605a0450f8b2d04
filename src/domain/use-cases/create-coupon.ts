import type { Coupon, NewCoupon } from '../coupon.js';
import { DomainError } from '../errors.js';
import type { CouponRepository, EventScheduler, IssueGate, Logger } from '../ports.js';

export class CreateCoupon {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      gate: IssueGate;
      logger: Logger;
      scheduler?: EventScheduler;
      now?: () => Date;
    },
  ) {}

  /** `logger`: where this call's lines go (an HTTP request's names the request). */
  async execute(input: NewCoupon, logger: Logger = this.deps.logger): Promise<Coupon> {
    const now = this.deps.now?.() ?? new Date();
    if (input.startsAt && input.endsAt && input.endsAt <= input.startsAt) {
      throw new DomainError('VALIDATION_FAILED', 'endsAt must be after startsAt', {
        errors: [{ path: 'endsAt', message: 'must be after startsAt' }],
      });
    }
    if (input.endsAt && input.endsAt <= now) {
      throw new DomainError('VALIDATION_FAILED', 'endsAt must be in the future', {
        errors: [{ path: 'endsAt', message: 'must be in the future' }],
      });
    }
    const coupon = await this.deps.coupons.create(input);
    try {
      await this.deps.gate.load({
        couponId: coupon.id,
        totalQuantity: coupon.totalQuantity,
        remaining: coupon.totalQuantity,
        startsAt: coupon.startsAt,
        endsAt: coupon.endsAt,
        closed: false,
        paused: false,
        issuedUserIds: [],
      });
    } catch (err) {
      // The database row is what matters; the gate loads itself from it on the first request.
      logger.warn('coupon created but its Redis gate was not loaded yet', {
        couponId: coupon.id,
        error: String(err),
      });
    }
    try {
      await this.deps.scheduler?.schedule(coupon);
    } catch (err) {
      // The worker schedules every event's jobs on start and at each reconcile run.
      logger.warn('coupon created but its lifecycle jobs were not scheduled yet', {
        couponId: coupon.id,
        error: String(err),
      });
    }
    return coupon;
  }
}
