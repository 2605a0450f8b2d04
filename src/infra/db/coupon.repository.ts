import { and, asc, eq, gt, isNotNull, isNull, lt, lte, or, sql } from 'drizzle-orm';
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

  async liveCouponIds(): Promise<number[]> {
    const rows = await postgresCall(() =>
      this.db
        .select({ id: coupons.id })
        .from(coupons)
        .where(
          and(
            isNull(coupons.closedAt),
            lt(coupons.issuedCount, coupons.totalQuantity),
            or(
              isNull(coupons.endsAt),
              gt(coupons.endsAt, new Date(Date.now() - LIVE_AFTER_END_MS)),
            ),
          ),
        ),
    );
    return rows.map((r) => r.id);
  }

  async closeAtEnd(id: number): Promise<Coupon | null> {
    const [row] = await postgresCall(() =>
      this.db
        .update(coupons)
        .set({ closedAt: sql`${coupons.endsAt}` })
        .where(
          and(
            eq(coupons.id, id),
            isNull(coupons.closedAt),
            isNotNull(coupons.endsAt),
            lte(coupons.endsAt, sql`now()`),
          ),
        )
        .returning(),
    );
    return row ? toCoupon(row) : null;
  }

  async markRetired(id: number, retired = true): Promise<void> {
    await postgresCall(() =>
      this.db
        .update(coupons)
        .set({ retiredAt: retired ? sql`coalesce(${coupons.retiredAt}, now())` : null })
        .where(eq(coupons.id, id)),
    );
  }

  async unretiredCoupons(): Promise<Coupon[]> {
    const rows = await postgresCall(() =>
      this.db
        .select()
        .from(coupons)
        .where(
          or(
            isNull(coupons.retiredAt),
            // Retired once, live again since (its quantity grew or it was reopened).
            and(isNull(coupons.closedAt), lt(coupons.issuedCount, coupons.totalQuantity)),
          ),
        )
        .orderBy(asc(coupons.id)),
    );
    return rows.map(toCoupon);
  }

  async gateState(id: number): Promise<CouponGateState | null> {
    return postgresCall(() =>
      this.db.transaction(
        async (tx) => {
          // FOR SHARE waits for a batch transaction holding the row and keeps new ones out
          // while the issued users are read, so the count and the set agree and are current.
          const [row] = await tx.select().from(coupons).where(eq(coupons.id, id)).for('share');
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
        { isolationLevel: 'read committed' },
      ),
    );
  }
}

export const LIVE_AFTER_END_MS = 24 * 3_600_000;

function toCoupon(row: CouponRow): Coupon {
  return {
    id: row.id,
    name: row.name,
    totalQuantity: row.totalQuantity,
    issuedCount: row.issuedCount,
    startsAt: row.startsAt,
    endsAt: row.endsAt,
    closedAt: row.closedAt,
    pausedAt: row.pausedAt,
    retiredAt: row.retiredAt,
    createdAt: row.createdAt,
  };
}
