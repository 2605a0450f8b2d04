import { couponStatus, type Coupon } from '../domain/coupon.js';
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
