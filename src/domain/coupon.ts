export type CouponStatus = 'SCHEDULED' | 'OPEN' | 'PAUSED' | 'SOLD_OUT' | 'ENDED' | 'CLOSED';

export interface Coupon {
  readonly id: number;
  readonly name: string;
  readonly totalQuantity: number;
  readonly issuedCount: number;
  readonly startsAt: Date | null;
  readonly endsAt: Date | null;
  readonly closedAt: Date | null;
  /** Set while an operator holds the event paused. */
  readonly pausedAt: Date | null;
  /** Set once the finished event's Redis keys were deleted. */
  readonly retiredAt: Date | null;
  readonly createdAt: Date;
}

export interface NewCoupon {
  readonly name: string;
  readonly totalQuantity: number;
  readonly startsAt: Date | null;
  readonly endsAt: Date | null;
}

/** What the Redis gate needs to decide requests for one coupon. */
export interface CouponGateState {
  readonly couponId: number;
  readonly totalQuantity: number;
  readonly remaining: number;
  readonly startsAt: Date | null;
  readonly endsAt: Date | null;
  readonly closed: boolean;
  /** An operator holds the event paused: nothing is accepted or decided. */
  readonly paused: boolean;
  readonly issuedUserIds: readonly string[];
}

export const MAX_TOTAL_QUANTITY = 10_000_000;

export function couponStatus(coupon: Coupon, now: Date): CouponStatus {
  if (coupon.issuedCount >= coupon.totalQuantity) return 'SOLD_OUT';
  if (coupon.closedAt) return 'CLOSED';
  if (coupon.startsAt && now < coupon.startsAt) return 'SCHEDULED';
  if (coupon.endsAt && now >= coupon.endsAt) return 'ENDED';
  if (coupon.pausedAt) return 'PAUSED';
  return 'OPEN';
}

/** Finished for good (quantity aside): no window edit, open or pause applies. */
export function isFinished(status: CouponStatus): boolean {
  return status === 'CLOSED' || status === 'ENDED' || status === 'SOLD_OUT';
}
