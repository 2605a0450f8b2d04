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
  // A close at (or after) the end of the window is the window ending, not an early close.
  if (coupon.closedAt && !(coupon.endsAt && coupon.closedAt >= coupon.endsAt)) return 'CLOSED';
  if (coupon.startsAt && now < coupon.startsAt) return 'SCHEDULED';
  if (coupon.endsAt && now >= coupon.endsAt) return 'ENDED';
  if (coupon.pausedAt) return 'PAUSED';
  return 'OPEN';
}

/** Finished for good (quantity aside): no window edit, open or pause applies. */
export function isFinished(status: CouponStatus): boolean {
  return status === 'CLOSED' || status === 'ENDED' || status === 'SOLD_OUT';
}

/**
 * Nothing more can be decided for this event: it was closed or every coupon
 * is issued. Its gate is never loaded again; PostgreSQL answers for it.
 */
export function isClosedOrSoldOut(coupon: Coupon): boolean {
  return coupon.closedAt !== null || coupon.issuedCount >= coupon.totalQuantity;
}

/**
 * When an event's Redis keys may expire, as a second safety behind
 * retirement: `afterEndMs` past its close, else past its end; a sold-out event
 * without either gets `afterEndMs` from now (pushed forward while it stays so).
 * Null while the event has no end: its keys must not expire.
 */
export function keyExpiryAt(coupon: Coupon, afterEndMs: number, now: Date): Date | null {
  const closedAt = coupon.closedAt?.getTime();
  const endsAt = coupon.endsAt?.getTime();
  if (closedAt !== undefined) return new Date(Math.min(closedAt, endsAt ?? closedAt) + afterEndMs);
  if (endsAt !== undefined) return new Date(endsAt + afterEndMs);
  if (coupon.issuedCount >= coupon.totalQuantity) return new Date(now.getTime() + afterEndMs);
  return null;
}
