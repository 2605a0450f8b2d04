import type { Coupon } from '../coupon.js';
import { couponNotFound } from '../errors.js';
import type { CouponRepository } from '../ports.js';

export class GetCoupon {
  constructor(private readonly deps: { coupons: CouponRepository }) {}

  async execute(couponId: number): Promise<Coupon> {
    const coupon = await this.deps.coupons.findById(couponId);
    if (!coupon) throw couponNotFound(couponId);
    return coupon;
  }
}
