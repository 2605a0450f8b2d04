import type { Coupon } from '../coupon.js';
import { DomainError } from '../errors.js';
import type { CouponRepository } from '../ports.js';

export class GetCoupon {
  constructor(private readonly deps: { coupons: CouponRepository }) {}

  async execute(couponId: number): Promise<Coupon> {
    const coupon = await this.deps.coupons.findById(couponId);
    if (!coupon) throw new DomainError('COUPON_NOT_FOUND', `coupon ${couponId} does not exist`);
    return coupon;
  }
}
