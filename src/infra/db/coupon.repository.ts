import { and, asc, desc, eq, gt, isNotNull, isNull, lt, lte, or, sql, type SQL } from 'drizzle-orm';
import type { Coupon, CouponGateState, CouponStatus, NewCoupon } from '../../domain/coupon.js';
import { DomainError } from '../../domain/errors.js';
import type {
  CouponChange,
  CouponListQuery,
  CouponRepository,
  CouponUpdateHooks,
  RequestFigures,
} from '../../domain/ports.js';
import type { Database } from './client.js';
import { postgresCall } from './guard.js';
import { coupons, issuedCoupons, issueRequests, type CouponRow } from './schema.js';

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

  async list(query: CouponListQuery): Promise<Coupon[]> {
    const conditions: SQL[] = [];
    if (query.status) conditions.push(statusIs(query.status, query.now));
    if (query.afterId !== null) conditions.push(lt(coupons.id, query.afterId));
    const rows = await postgresCall(() =>
      this.db
        .select()
        .from(coupons)
        .where(and(...conditions))
        .orderBy(desc(coupons.id))
        .limit(query.limit),
    );
    return rows.map(toCoupon);
  }

  async update(id: number, change: CouponChange, hooks: CouponUpdateHooks): Promise<Coupon | null> {
    return postgresCall(() =>
      this.db.transaction(
        async (tx) => {
          // FOR UPDATE waits for a batch transaction of the coupon and keeps the next one out
          // until this change (and the Redis change confirming it) is done.
          const [locked] = await tx.select().from(coupons).where(eq(coupons.id, id)).for('update');
          if (!locked) return null;
          const before = toCoupon(locked);
          hooks.check(before);
          const wanted = change.totalQuantity;
          if (wanted !== undefined && wanted < locked.issuedCount) {
            throw belowIssued(locked.issuedCount);
          }
          const [row] = await tx
            .update(coupons)
            .set({
              ...(change.name === undefined ? {} : { name: change.name }),
              ...(wanted === undefined ? {} : { totalQuantity: wanted }),
              ...(change.startsAt === undefined ? {} : { startsAt: change.startsAt }),
              ...(change.endsAt === undefined ? {} : { endsAt: change.endsAt }),
            })
            .where(
              and(
                eq(coupons.id, id),
                wanted === undefined ? undefined : sql`${coupons.issuedCount} <= ${wanted}`,
              ),
            )
            .returning();
          if (!row) throw belowIssued(locked.issuedCount);
          const after = toCoupon(row);
          await hooks.confirm(before, after);
          return after;
        },
        { isolationLevel: 'read committed' },
      ),
    );
  }

  async setPaused(id: number, paused: boolean): Promise<Coupon | null> {
    const [row] = await postgresCall(() =>
      this.db
        .update(coupons)
        .set({ pausedAt: paused ? sql`coalesce(${coupons.pausedAt}, now())` : null })
        .where(eq(coupons.id, id))
        .returning(),
    );
    return row ? toCoupon(row) : null;
  }

  async startNow(id: number): Promise<Coupon | null> {
    const [row] = await postgresCall(() =>
      this.db
        .update(coupons)
        .set({
          startsAt: sql`CASE WHEN ${coupons.startsAt} > now() THEN now() ELSE ${coupons.startsAt} END`,
        })
        .where(eq(coupons.id, id))
        .returning(),
    );
    return row ? toCoupon(row) : null;
  }

  async requestFigures(id: number, windowMs: number): Promise<RequestFigures> {
    const since = sql`now() - make_interval(secs => ${windowMs / 1000})`;
    return postgresCall(async () => {
      // A coupon's request ids run from "<id>-" up to (not including) "<id>." in byte order:
      // the primary key finds them without an index on coupon_id.
      const [requests] = await this.db
        .select({
          soldOut: sql<number>`count(*) FILTER (WHERE ${issueRequests.reason} = 'SOLD_OUT')::int`,
          alreadyIssued: sql<number>`count(*) FILTER (WHERE ${issueRequests.reason} = 'ALREADY_ISSUED')::int`,
          eventClosed: sql<number>`count(*) FILTER (WHERE ${issueRequests.reason} = 'EVENT_CLOSED')::int`,
          recent: sql<number>`count(*) FILTER (WHERE ${issueRequests.requestedAt} >= ${since})::int`,
        })
        .from(issueRequests)
        .where(
          and(
            sql`${issueRequests.requestId} >= ${`${id}-`}`,
            sql`${issueRequests.requestId} < ${`${id}.`}`,
          ),
        );
      const [issued] = await this.db
        .select({ recent: sql<number>`count(*)::int` })
        .from(issuedCoupons)
        .where(and(eq(issuedCoupons.couponId, id), sql`${issuedCoupons.issuedAt} >= ${since}`));
      return {
        rejected: {
          SOLD_OUT: requests?.soldOut ?? 0,
          ALREADY_ISSUED: requests?.alreadyIssued ?? 0,
          EVENT_CLOSED: requests?.eventClosed ?? 0,
        },
        requestedInWindow: requests?.recent ?? 0,
        issuedInWindow: issued?.recent ?? 0,
      };
    });
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
            paused: row.pausedAt !== null,
            issuedUserIds: issued.map((r) => r.userId),
          };
        },
        { isolationLevel: 'read committed' },
      ),
    );
  }
}

export const LIVE_AFTER_END_MS = 24 * 3_600_000;

function belowIssued(issued: number): DomainError {
  return new DomainError(
    'QUANTITY_BELOW_ISSUED',
    `totalQuantity cannot go below ${issued}: ${issued} coupons are issued`,
    { errors: [{ path: 'totalQuantity', message: `must be at least ${issued}` }] },
  );
}

/** `couponStatus` in SQL: the same checks in the same order, so a filter and the rows agree. */
function statusIs(status: CouponStatus, now: Date): SQL {
  const soldOut = sql`${coupons.issuedCount} >= ${coupons.totalQuantity}`;
  // As couponStatus: a close at (or after) the end of the window is the window ending.
  const closed = sql`(${coupons.closedAt} IS NOT NULL AND NOT (${coupons.endsAt} IS NOT NULL AND ${coupons.closedAt} >= ${coupons.endsAt}))`;
  const scheduled = sql`(${coupons.startsAt} IS NOT NULL AND ${coupons.startsAt} > ${now})`;
  const ended = sql`(${coupons.endsAt} IS NOT NULL AND ${coupons.endsAt} <= ${now})`;
  const paused = sql`${coupons.pausedAt} IS NOT NULL`;
  const order: [CouponStatus, SQL][] = [
    ['SOLD_OUT', soldOut],
    ['CLOSED', closed],
    ['SCHEDULED', scheduled],
    ['ENDED', ended],
    ['PAUSED', paused],
    ['OPEN', sql`true`],
  ];
  const parts: SQL[] = [];
  for (const [name, condition] of order) {
    if (name === status) {
      parts.push(condition);
      break;
    }
    parts.push(sql`NOT ${condition}`);
  }
  return sql.join(
    parts.map((p) => sql`(${p})`),
    sql` AND `,
  );
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
    pausedAt: row.pausedAt,
    retiredAt: row.retiredAt,
    createdAt: row.createdAt,
  };
}
