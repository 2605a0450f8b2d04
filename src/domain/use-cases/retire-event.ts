import { isClosedOrSoldOut } from '../coupon.js';
import type { CouponRepository, EventKeys, Logger } from '../ports.js';

export type RetireResult = 'retired' | 'busy' | 'live';

/**
 * Once a closed or sold-out event has nothing left to decide (nothing
 * queued, nothing in flight, every batch recorded in PostgreSQL), deletes
 * every Redis key it has and notes it in PostgreSQL. Redis goes first: a
 * retirement noted but not done would leave keys nobody deletes; one done but
 * not noted is simply done again by the next run. Status reads and refusals
 * come from PostgreSQL from then on (the gate is never loaded again).
 */
export class RetireEvent {
  constructor(
    private readonly deps: { coupons: CouponRepository; events: EventKeys; logger: Logger },
  ) {}

  async execute(couponId: number): Promise<RetireResult> {
    const coupon = await this.deps.coupons.findById(couponId);
    if (!coupon || !isClosedOrSoldOut(coupon)) return 'live';
    if ((await this.deps.events.retire(couponId)) === 'busy') return 'busy';
    if (!coupon.retiredAt) {
      await this.deps.coupons.markRetired(couponId);
      this.deps.logger.info('event retired', { couponId });
    }
    return 'retired';
  }
}
