import type { Coupon, CouponStatus } from '../coupon.js';
import type { CouponRepository, EventControl, GateFigures } from '../ports.js';

export interface CouponListing {
  readonly items: readonly { readonly coupon: Coupon; readonly gate: GateFigures | null }[];
  /** The id to continue after, or null on the last page. */
  readonly nextAfterId: number | null;
  /** The time the status filter was judged at: statuses shown must be judged at it too. */
  readonly at: Date;
}

/** Events newest first, each with its live figures from Redis when its gate is loaded. */
export class ListCoupons {
  constructor(
    private readonly deps: { coupons: CouponRepository; control: EventControl; now?: () => Date },
  ) {}

  async execute(query: {
    status: CouponStatus | null;
    limit: number;
    afterId: number | null;
  }): Promise<CouponListing> {
    const now = this.deps.now?.() ?? new Date();
    // One row more than asked tells whether another page follows.
    const rows = await this.deps.coupons.list({ ...query, limit: query.limit + 1, now });
    const page = rows.slice(0, query.limit);
    const figures = await this.deps.control.figures(page.map((c) => c.id));
    return {
      items: page.map((coupon) => ({ coupon, gate: figures.get(coupon.id) ?? null })),
      nextAfterId: rows.length > query.limit ? (page[page.length - 1]?.id ?? null) : null,
      at: now,
    };
  }
}
