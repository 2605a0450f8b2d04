import type { CouponRepository, IssueQueue } from '../ports.js';

/**
 * Puts live coupons (per PostgreSQL) whose gate is loaded back in the
 * worker's rounds when the rounds lost them. A gate load adds the coupon in
 * the same script, so this only heals drift (a hand edit, a restored backup,
 * a bug): without it the coupon's accepted requests would stay PENDING for
 * ever, since only the rounds bring a worker to a coupon.
 */
export class ReactivateLiveCoupons {
  constructor(private readonly deps: { coupons: CouponRepository; queue: IssueQueue }) {}

  /** Returns the coupons put back. */
  async execute(): Promise<number[]> {
    const live = await this.deps.coupons.liveCouponIds();
    if (live.length === 0) return [];
    return this.deps.queue.reactivate(live);
  }
}
