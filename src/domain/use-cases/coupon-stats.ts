import { couponStatus, type CouponStatus } from '../coupon.js';
import { couponNotFound } from '../errors.js';
import type { CouponRepository, EventControl } from '../ports.js';

export const STATS_WINDOW_MS = 60_000;

export interface CouponStats {
  readonly couponId: number;
  readonly status: CouponStatus;
  /** Whether Redis holds the gate; when not, the Redis figures are 0. */
  readonly loaded: boolean;
  readonly totalQuantity: number;
  /** The gate's stock when loaded (issued and decided-in-flight taken off), else PostgreSQL's. */
  readonly remaining: number;
  /** Redis: requests waiting in the queue. */
  readonly queued: number;
  /** Redis: requests taken into batches not yet settled. */
  readonly inFlight: number;
  /** PostgreSQL: coupons issued. */
  readonly issued: number;
  /** PostgreSQL: decided requests refused, by reason. */
  readonly rejected: {
    readonly SOLD_OUT: number;
    readonly ALREADY_ISSUED: number;
    readonly EVENT_CLOSED: number;
  };
  /** Over the last `windowSeconds`. */
  readonly rates: {
    readonly windowSeconds: number;
    /**
     * Requests admitted: those decided into PostgreSQL plus those still in Redis
     * (a batch between its commit and its acknowledgement counts in both, for a moment).
     */
    readonly accepted: number;
    /** PostgreSQL: coupons issued. */
    readonly issued: number;
  };
}

/**
 * An event's figures, read from where they already are: nothing is counted on
 * the accept path or in the drain for them.
 */
export class CouponStatsQuery {
  constructor(
    private readonly deps: { coupons: CouponRepository; control: EventControl; now?: () => Date },
  ) {}

  async execute(couponId: number): Promise<CouponStats> {
    const coupon = await this.deps.coupons.findById(couponId);
    if (!coupon) throw couponNotFound(couponId);
    const [figures, requests, arrivals] = await Promise.all([
      this.deps.control.figures([couponId]),
      this.deps.coupons.requestFigures(couponId, STATS_WINDOW_MS),
      this.deps.control.recentArrivals(couponId, STATS_WINDOW_MS),
    ]);
    const gate = figures.get(couponId) ?? null;
    return {
      couponId,
      status: couponStatus(coupon, this.deps.now?.() ?? new Date()),
      loaded: gate !== null,
      totalQuantity: coupon.totalQuantity,
      remaining: gate ? gate.stock : coupon.totalQuantity - coupon.issuedCount,
      queued: gate?.queued ?? 0,
      inFlight: gate?.inFlight ?? 0,
      issued: coupon.issuedCount,
      rejected: requests.rejected,
      rates: {
        windowSeconds: STATS_WINDOW_MS / 1000,
        accepted: requests.requestedInWindow + arrivals,
        issued: requests.issuedInWindow,
      },
    };
  }
}
