import { eq, sql } from 'drizzle-orm';
import type { Coupon, CouponGateState, NewCoupon } from '../../domain/coupon.js';
import type { CouponRepository } from '../../domain/ports.js';
import type { Database } from './client.js';
import { postgresCall } from './guard.js';
import { coupons, issuedCoupons, type CouponRow } from './schema.js';

export class PgCouponRepository implements CouponRepository {
  constructor(private readonly db: Database) {}

  async create(input: NewCoupon): Promise<Coupon> {
    const [row] = await postgresCall(() =>
      this.db
        .insert(coupons)
        .values({
          name: input.name,
          totalQuantity: input.totalQuantity,
          startsAt: input.startsAt,
          endsAt: input.endsAt,
        })
        .returning(),
    );
    if (!row) throw new Error('INSERT … RETURNING returned no coupon');
    return toCoupon(row);
  }

  async findById(id: number): Promise<Coupon | null> {
    const [row] = await postgresCall(() =>
      this.db.select().from(coupons).where(eq(coupons.id, id)),
    );
    return row ? toCoupon(row) : null;
  }

  async close(id: number): Promise<Coupon | null> {
    const [row] = await postgresCall(() =>
      this.db
        .update(coupons)
        .set({ closedAt: sql`coalesce(${coupons.closedAt}, now())` })
        .where(eq(coupons.id, id))
        .returning(),
    );
    return row ? toCoupon(row) : null;
  }

  async gateState(id: number): Promise<CouponGateState | null> {
    return postgresCall(() =>
      this.db.transaction(
        async (tx) => {
          const [row] = await tx.select().from(coupons).where(eq(coupons.id, id));
          if (!row) return null;
          const issued = await tx
            .select({ userId: issuedCoupons.userId })
            .from(issuedCoupons)
            .where(eq(issuedCoupons.couponId, id));
          return {
            couponId: row.id,
            totalQuantity: row.totalQuantity,
            remaining: row.totalQuantity - row.issuedCount,
            startsAt: row.startsAt,
            endsAt: row.endsAt,
            closed: row.closedAt !== null,
            issuedUserIds: issued.map((r) => r.userId),
          };
        },
        // One snapshot, so the count and the set agree.
        { isolationLevel: 'repeatable read', accessMode: 'read only' },
      ),
    );
  }
}

function toCoupon(row: CouponRow): Coupon {
  return {
    id: row.id,
    name: row.name,
    totalQuantity: row.totalQuantity,
    issuedCount: row.issuedCount,
    startsAt: row.startsAt,
    endsAt: row.endsAt,
    closedAt: row.closedAt,
  };
}
