import { couponStatus, type Coupon } from '../domain/coupon.js';
import type { GateFigures } from '../domain/ports.js';
import type { IssueRequestView } from '../domain/issue-request.js';

export function presentCoupon(coupon: Coupon, now = new Date()) {
  return {
    id: coupon.id,
    name: coupon.name,
    totalQuantity: coupon.totalQuantity,
    issuedCount: coupon.issuedCount,
    remaining: coupon.totalQuantity - coupon.issuedCount,
    startsAt: coupon.startsAt?.toISOString() ?? null,
    endsAt: coupon.endsAt?.toISOString() ?? null,
    status: couponStatus(coupon, now),
  };
}

/**
 * A coupon with its live figures: `remaining` from the gate's stock when Redis
 * holds it (issued and decided-in-flight already taken off), `queued` and
 * `inFlight` from Redis (null when the gate is not loaded).
 */
export function presentCouponListItem(coupon: Coupon, gate: GateFigures | null, now = new Date()) {
  const base = presentCoupon(coupon, now);
  return {
    ...base,
    remaining: gate ? gate.stock : base.remaining,
    queued: gate?.queued ?? null,
    inFlight: gate?.inFlight ?? null,
    pausedAt: coupon.pausedAt?.toISOString() ?? null,
    closedAt: coupon.closedAt?.toISOString() ?? null,
    createdAt: coupon.createdAt.toISOString(),
  };
}

export function presentIssueRequest(view: IssueRequestView) {
  return {
    requestId: view.requestId,
    couponId: view.couponId,
    userId: view.userId,
    status: view.status,
    reason: view.reason,
    queuePosition: view.queuePosition,
    issueId: view.issueId,
    requestedAt: view.requestedAt.toISOString(),
    decidedAt: view.decidedAt?.toISOString() ?? null,
  };
}
